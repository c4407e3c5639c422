"""%tfserve start --batching: the parameters file beside models.config, and batched serving."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from tfserve_magic.lifecycle import registry
from tfserve_magic.serving.batching.parameters import NOTEBOOK_DEFAULTS, parse_batching_text


def _post(url: str, body: object) -> object:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_start_with_batching_writes_the_file_and_serves_batched(ip, capsys, half_plus_two) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two} --batching")
    out, err = capsys.readouterr()
    assert err == "" and "Started server half_plus_two" in out
    record = registry.find_record("half_plus_two")
    assert record is not None
    try:
        config = Path(record.model_config_file or "")
        params = config.with_name(config.name.removesuffix(".config") + ".batching_parameters.txt")
        assert params.exists(), sorted(p.name for p in config.parent.iterdir())
        assert parse_batching_text(params.read_text(), str(params)) == NOTEBOOK_DEFAULTS
        assert f"--batching_parameters_file={params}" in " ".join(record.argv or [])

        results: list[object] = []
        url = f"{record.url}/v1/models/half_plus_two:predict"

        def client(index: int) -> None:
            for step in range(5):
                x = float(index * 10 + step)
                results.append((x, _post(url, {"instances": [x]})))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(results) == 40
        assert all(answer == {"predictions": [x * 0.5 + 2]} for x, answer in results)
        with urllib.request.urlopen(f"{record.url}/monitoring/prometheus/metrics") as response:
            metrics = response.read().decode()
        assert 'tfserve_magic_batch_size_count{model_name="half_plus_two",version="1"}' in metrics
        ip.run_line_magic("tfserve", "logs half_plus_two -n 400")
        logs, _ = capsys.readouterr()
        assert ("Wrapping servable half_plus_two version 1 to perform batch processing "
                "(max_batch_size=32, batch_timeout_micros=0, max_enqueued_batches=64") in logs
    finally:
        ip.run_line_magic("tfserve", "stop half_plus_two")
        capsys.readouterr()
