"""%tfserve and %%predict in a real IPython shell, against real servers on tiny SavedModels."""

from __future__ import annotations

import os
import signal
import socket

import numpy as np
import pytest
from server_process import wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.lifecycle.refusals import UnknownServer
from tfserve_magic.notebook import defaults
from tfserve_magic.pids import pid_alive
from tfserve_magic.status import VersionState


def run(ip, capsys, line: str) -> tuple[str, str]:
    ip.run_line_magic("tfserve", line)
    captured = capsys.readouterr()
    return captured.out, captured.err


def predict(ip, capsys, line: str, cell: str) -> tuple[str, str]:
    ip.run_cell_magic("predict", line, cell)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_start_predict_reuse_list_status_stop(ip, capsys, half_plus_two) -> None:
    out, err = run(ip, capsys, f"start {half_plus_two}")
    assert err == "" and "Started server half_plus_two" in out and "serving half_plus_two" in out
    record = registry.find_record("half_plus_two")
    assert record is not None and registry.probe(record) is not None

    out, _ = predict(ip, capsys, "half_plus_two -o y", "[1.0, 2.0, 5.0]")
    assert np.allclose(ip.user_ns["y"], [2.5, 3.0, 4.5])
    assert "stored in y" in out

    out, _ = run(ip, capsys, f"start {half_plus_two}")
    assert f"Reusing server half_plus_two (pid {record.pid})" in out

    out, _ = run(ip, capsys, "list")
    assert "half_plus_two" in out and "alive" in out and str(record.rest_api_port) in out

    out, _ = run(ip, capsys, "status half_plus_two")
    assert "1        AVAILABLE" in out

    out, _ = run(ip, capsys, "signatures half_plus_two")
    assert "in  x: float32 unknown rank" in out and "classify_x_to_y" in out

    out, _ = run(ip, capsys, "logs half_plus_two -n 200")
    assert "Successfully loaded servable version {name: half_plus_two version: 1}" in out

    out, _ = run(ip, capsys, "url half_plus_two")
    assert f"direct: {record.url}/\n" in out  # the server's own page

    out, _ = run(ip, capsys, "stop half_plus_two")
    assert out.strip() == "Stopped half_plus_two."
    assert not pid_alive(record.pid)
    assert registry.find_record("half_plus_two") is None


def test_predict_cell_forms_and_errors(ip, capsys, half_plus_two, multi_io) -> None:
    run(ip, capsys, f"start {half_plus_two}")
    run(ip, capsys, f"start {multi_io}")
    ip.user_ns["batch"] = {"a": np.float32([1, 2]), "b": np.float32([3, 4])}
    predict(ip, capsys, "multi_io -o r", "batch")
    assert np.allclose(ip.user_ns["r"]["sum"], [4, 6])
    predict(ip, capsys, "multi_io --columnar -o c", "batch")
    assert np.allclose(ip.user_ns["c"]["product"], [3, 8])
    predict(ip, capsys, "half_plus_two -o j", '{"instances": [2.0], "signature_name": "serving_default"}')
    assert np.allclose(ip.user_ns["j"], [3.0])
    ip.user_ns["xs"] = np.float32([4.0])
    predict(ip, capsys, "half_plus_two -o t", "xs * 2")
    assert np.allclose(ip.user_ns["t"], [6.0])

    _, err = predict(ip, capsys, "half_plus_two", '["a"]')
    assert "is not of expected type: float (HTTP 400)" in err and "Traceback" not in err
    _, err = predict(ip, capsys, "half_plus_two --version 7", "[1.0]")
    assert "Servable not found for request: Specific(half_plus_two, 7) (HTTP 404)" in err
    _, err = predict(ip, capsys, "nothing_here", "[1.0]")
    assert "no running server serves a model named nothing_here" in err
    _, err = predict(ip, capsys, "half_plus_two", "undefined_name + 1")
    assert "neither a Python expression" in err
    _, err = predict(ip, capsys, "half_plus_two --version 1 --label x", "[1.0]")
    assert "not allowed with argument" in err


def test_versions_labels_push_and_default_route(ip, capsys, versioned_base, tmp_path) -> None:
    import tensorflow as tf

    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "plus" base_path: "{versioned_base}" '
                      'model_platform: "tensorflow" model_version_policy { all {} } '
                      'version_labels { key: "stable" value: 1 } } }')
    out, err = run(ip, capsys, f"start --config {config} --name lab")
    assert "Started server lab" in out, err

    class PlusTen(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + 10.0}

    ip.user_ns["better"] = PlusTen()
    out, err = run(ip, capsys, "push better --name plus")
    assert "plus version 2 is AVAILABLE" in out, err
    assert sorted(os.listdir(versioned_base)) == ["1", "2"]

    def y(line: str) -> float:
        ip.user_ns.pop("r", None)  # a failed request leaves r alone: never read an old value
        _, err = predict(ip, capsys, f"plus -o r {line}", "[0.0]")
        assert err == "", err
        return float(ip.user_ns["r"][0])

    assert (y(""), y("--version 1"), y("--version 2"), y("--label stable")) == (10.0, 1.0, 10.0, 1.0)
    defaults.set_default("lab", "plus", version=1)
    assert y("") == 1.0
    defaults.set_default("lab", "plus")
    assert y("") == 10.0

    out, _ = run(ip, capsys, "reload lab")
    assert "stable" in out and "AVAILABLE" in out


def test_push_of_a_model_that_fails_to_load_says_why(ip, capsys, versioned_base) -> None:
    from models import unloadable_module

    run(ip, capsys, f"start {versioned_base}")
    ip.user_ns["broken"] = unloadable_module()
    out, err = run(ip, capsys, "push broken --name plus")
    assert out == ""
    assert err.startswith("plus version 2 did not load: InvalidArgumentError: "), err
    assert "this model cannot be initialised" in err
    _, err = predict(ip, capsys, "plus --version 2", "[1.0]")
    assert "Servable not found for request: Specific(plus, 2)" in err


def test_push_that_does_not_load_in_time_says_so(ip, capsys, versioned_base) -> None:
    from models import unloadable_module

    # With load retries on (every 10 minutes), the broken version stays LOADING past the timeout.
    out, err = run(ip, capsys, f"start {versioned_base} --max_num_load_retries=3 "
                               "--load_retry_interval_micros=600000000")
    assert "Started server plus" in out, err
    ip.user_ns["broken"] = unloadable_module()
    out, err = run(ip, capsys, "push broken --name plus --timeout 2")
    assert out == ""
    assert (f"plus version 2 was written to {versioned_base / '2'} but was not "
            "AVAILABLE within 2 s; see %tfserve logs plus.") in err, err


def test_signature_host_python_dashboard_and_stop_all(ip, capsys, tmp_path, half_plus_two) -> None:
    from models import build_two_signatures

    import tfserve_magic

    base = tmp_path / "two"
    build_two_signatures(str(base))
    out, err = run(ip, capsys, f"start {base} --host 0.0.0.0")
    assert "Started server two" in out, err
    record = registry.find_record("two")
    assert record.host == "0.0.0.0" and record.url == f"http://127.0.0.1:{record.rest_api_port}"
    for line, expected in (("two", 2.0), ("two --signature triple", 3.0)):
        ip.user_ns.pop("r", None)
        _, err = predict(ip, capsys, f"{line} -o r", "[1.0]")
        assert err == "" and ip.user_ns["r"].tolist() == [expected], err
    _, err = predict(ip, capsys, "two --signature nope", "[1.0]")
    assert 'Serving signature name: "nope" not found in signature def (HTTP 400)' in err

    dash = tfserve_magic.dashboard("two", interval=60)
    try:
        assert "data-version='1'" in dash.panels["two"].versions.value
    finally:
        dash.close()
    with pytest.raises(UnknownServer, match="no running server named nope"):
        tfserve_magic.dashboard("nope")

    run(ip, capsys, f"start {half_plus_two}")
    pids = [r.pid for r in registry.read_records()]
    out, err = run(ip, capsys, "stop --all")
    assert out.strip() == "Stopped half_plus_two, two." and err == ""
    assert registry.read_records() == [] and not any(registry.pid_alive(p) for p in pids)


def test_help_and_usage(ip, capsys) -> None:
    out, _ = run(ip, capsys, "")
    assert "start" in out and "dashboard" in out
    out, _ = run(ip, capsys, "--help")
    assert "Serve TensorFlow models" in out
    _, err = run(ip, capsys, "frobnicate")
    assert "invalid choice: 'frobnicate'" in err and "usage: %tfserve" in err
    _, err = run(ip, capsys, "list --bogus")
    assert "unrecognized arguments: --bogus" in err
    out, _ = run(ip, capsys, "push --help")
    assert "Export a Keras model or tf.Module" in out
    _, err = run(ip, capsys, "start")
    assert "give MODEL_DIR or --config FILE" in err
    ip.run_cell_magic("predict", "--help", " ")
    assert "Send the cell" in capsys.readouterr().out


# ---------------------------------------------------------------- failure modes


def test_start_of_a_path_that_does_not_exist(ip, capsys, tmp_path) -> None:
    _, err = run(ip, capsys, f"start {tmp_path / 'missing'}")
    assert f"{tmp_path / 'missing'} does not exist or is not a folder" in err
    assert registry.read_records() == []


def test_start_of_a_version_folder_explains_the_base_path(ip, capsys, half_plus_two) -> None:
    _, err = run(ip, capsys, f"start {half_plus_two / '1'}")
    assert "is a version folder" in err and str(half_plus_two) in err


def test_port_already_taken(ip, capsys, half_plus_two) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _, err = run(ip, capsys, f"start {half_plus_two} --port {port}")
    assert f"Failed to start HTTP Server on 127.0.0.1:{port}: Address already in use" in err
    assert registry.read_records() == []


def test_corrupt_saved_model(ip, capsys, tmp_path, half_plus_two) -> None:
    from models import corrupt_copy

    base = tmp_path / "corrupt"
    base.mkdir()
    corrupt_copy(str(half_plus_two / "1"), str(base / "1"))
    _, err = run(ip, capsys, f"start {base}")
    assert "Model corrupt failed to load: version 1: Error reading SavedModel" in err
    # The folder a person can open, not the status API's "<base_path of corrupt>".
    assert f"Error reading SavedModel at {base / '1'}" in err and "<base_path" not in err, err
    assert registry.read_records() == []  # the failed server was stopped, nothing left behind


def test_killed_server_is_replaced_not_reused(ip, capsys, half_plus_two) -> None:
    run(ip, capsys, f"start {half_plus_two}")
    first = registry.find_record("half_plus_two")
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first.pid), 30, what="the killed server to go")
    out, _ = run(ip, capsys, f"start {half_plus_two}")
    second = registry.find_record("half_plus_two")
    assert "Started server half_plus_two" in out and second.pid != first.pid
    assert registry.probe(second) is not None
    out, _ = run(ip, capsys, "list")
    assert out.count("half_plus_two") == 2  # the row names it and its model


def test_dead_records_show_in_list(ip, capsys, half_plus_two) -> None:
    run(ip, capsys, f"start {half_plus_two}")
    record = registry.find_record("half_plus_two")
    os.kill(record.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(record.pid), 30, what="the killed server to go")
    out, _ = run(ip, capsys, "list")
    assert "dead" in out


def test_same_name_different_model_is_refused(ip, capsys, half_plus_two, multi_io) -> None:
    run(ip, capsys, f"start {half_plus_two} --name shared")
    _, err = run(ip, capsys, f"start {multi_io} --name shared")
    assert "A server named shared is already running" in err


# ---------------------------------------------------------------- Python API and Colab seam


def test_python_api(runtime_dir, half_plus_two) -> None:
    import tfserve_magic

    with tfserve_magic.start(str(half_plus_two)) as server:
        assert np.allclose(server.predict(None, [2.0]), [3.0])
        assert server.status()[0].state is VersionState.AVAILABLE
        client = tfserve_magic.Client(server.url)
        assert client.regress("half_plus_two", [{"x": 80.0}], signature="regress_x_to_y") == [42.0]
        # Without the server's secret a client sees models and states, not the pid or folders.
        told = client.server_info()
        assert told.pid is None and not told.private and told.model_names == ("half_plus_two",)
        assert server.client.server_info().pid == server.record.pid
        pid = server.record.pid
    assert not pid_alive(pid)
    with pytest.raises(launcher.LaunchError, match="does not exist"):
        tfserve_magic.start("/no/such/model")


def test_colab_link_through_the_seam(ip, capsys, half_plus_two, monkeypatch) -> None:
    from tfserve_magic.notebook import colab

    class FakeColab:
        def available(self) -> bool:
            return True

        def proxy_url(self, port: int) -> str:
            return f"https://{port}-colab.example/"

    monkeypatch.setattr(colab, "bridge", FakeColab())
    assert colab.in_colab()
    run(ip, capsys, f"start {half_plus_two}")
    from tfserve_magic.notebook.magics import server_urls

    urls = dict(server_urls(launcher.find("half_plus_two")))
    port = registry.find_record("half_plus_two").rest_api_port
    assert urls["Colab"] == f"https://{port}-colab.example/"
    monkeypatch.setattr(colab, "bridge", colab.GoogleColabBridge())
    assert colab.in_colab() is False and colab.colab_url(port) is None


def test_start_on_a_folder_without_version_folders_says_there_is_nothing_to_serve(
        ip, capsys, tmp_path) -> None:
    base = tmp_path / "notamodel"
    (base / "digits").mkdir(parents=True)  # the parent of a base path, say
    out, err = run(ip, capsys, f"start {base}")
    assert "Started server notamodel" in out, err
    assert (f"Nothing to serve yet for notamodel: {base} holds no version folder (it holds "
            "digits/)") in out
    assert "numeric folders such as" in out and "saved_model.pb" in out


def test_wrong_shape_names_the_expected_input_and_outputs_keep_their_dtype(
        ip, capsys, tmp_path) -> None:
    from models import build_pixels

    base = tmp_path / "pixels"
    build_pixels(str(base))
    run(ip, capsys, f"start {base}")
    _, err = predict(ip, capsys, "pixels", "[[1.0, 2.0]]")
    # What to send leads; TensorFlow's reason follows, without its graph internals.
    assert err.startswith("%%predict pixels: signature serving_default expects pixels: float32 "
                          "[None, 4]; the request sent pixels: [1, 2] (TensorFlow: Matrix "
                          "size-incompatible"), err
    assert "(HTTP 400)" in err
    for internal in ("Graph execution error", "Detected at node", "stack traces", "{{node",
                     "[Op:", "PartitionedCall"):
        assert internal not in err, err
    # The same words in TF Serving's {"error": ...} body, with its status.
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{launcher.find('pixels').url}/v1/models/pixels:predict",
                                     b'{"instances": [[1.0, 2.0, 3.0]]}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"].startswith(
        "signature serving_default expects pixels: float32 [None, 4]; the request sent "
        "pixels: [1, 3] (TensorFlow: ")
    predict(ip, capsys, "pixels -o y", "[[1.0, 2.0, 0.0, 0.0]]")
    assert ip.user_ns["y"].dtype == np.float32  # the signature's dtype, not JSON's float64
    assert ip.user_ns["y"].tolist() == [[1.0, 2.0]]
