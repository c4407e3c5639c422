"""%tfserve start --batching: the parameters file beside models.config with the README's notebook
defaults (32 rows, timeout 0, 64 enqueued batches, 1 thread), batched serving, and edits to the
file that survive a restart."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import tfserve_magic
from tfserve_magic.lifecycle import registry
from tfserve_magic.serving.batching.parameters import BatchingConfig, parse_batching_text


def _post(url: str, body: object) -> object:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_start_with_batching_writes_the_readme_defaults_serves_batched_and_keeps_edits(
        ip, capsys, half_plus_two) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two} --batching")
    out, err = capsys.readouterr()
    assert err == "" and "Started server half_plus_two" in out
    record = registry.find_record("half_plus_two")
    assert record is not None
    try:
        config = Path(record.model_config_file or "")
        params = config.with_name(config.name.removesuffix(".config") + ".batching_parameters.txt")
        assert params.exists(), sorted(p.name for p in config.parent.iterdir())
        # The README's numbers, not the package's own constant.
        assert parse_batching_text(params.read_text(), str(params)) == BatchingConfig(
            max_batch_size=32, batch_timeout_micros=0, max_enqueued_batches=64,
            num_batch_threads=1)
        assert f"--batching_parameters_file={params}" in " ".join(record.argv or [])
        # What 04_batching.ipynb reads, through the public handle.
        assert tfserve_magic.find("half_plus_two").batching_parameters_file == str(params)

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
                "(max_batch_size=32, batch_timeout_micros=0, max_enqueued_batches=64, "
                "num_batch_threads=1)") in logs
    finally:
        ip.run_line_magic("tfserve", "stop half_plus_two")
        capsys.readouterr()
    # An edit to the file survives a restart: the next start serves with it, unchanged.
    edited = "max_batch_size { value: 8 } batch_timeout_micros { value: 500 }\n"
    params.write_text(edited)
    ip.run_line_magic("tfserve", f"start {half_plus_two} --batching")
    try:
        assert "Started server half_plus_two" in capsys.readouterr()[0]
        assert params.read_text() == edited
        ip.run_line_magic("tfserve", "logs half_plus_two -n 400")
        logs, _ = capsys.readouterr()
        assert ("Wrapping servable half_plus_two version 1 to perform batch processing "
                "(max_batch_size=8, batch_timeout_micros=500, max_enqueued_batches=10") in logs
    finally:
        ip.run_line_magic("tfserve", "stop half_plus_two")
        capsys.readouterr()
