"""Load retries and version folders on a real server subprocess (issue 13 items 7 and 8): with
the default retry flags a broken version's status shows its error and what comes next while a
good newer version is served at once; a version folder linking outside the base path is never
loaded; status errors name the model's folder, not its absolute path."""

from __future__ import annotations

import shutil
from pathlib import Path

from models import corrupt_copy
from server_process import start_server, wait_for


def status_of(server, model: str) -> dict[int, dict]:
    response = server.get(f"/v1/models/{model}")
    return {int(v["version"]): v for v in response.json()["model_version_status"]} \
        if response.status == 200 else {}


def test_a_retrying_broken_version_shows_its_error_and_holds_nothing_back(
        tmp_path: Path, plus_version_builds: Path) -> None:
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "plus" base_path: "{base}" '
                      'model_platform: "tensorflow" model_version_policy { all {} } } }')
    server = start_server(f"--model_config_file={config}", log_dir=tmp_path)  # default retries
    try:
        server.wait_state("plus", 1)
        corrupt_copy(str(plus_version_builds / "2"), str(tmp_path / ".incoming-2"))
        (tmp_path / ".incoming-2").rename(base / "2")
        retrying = wait_for(lambda: status_of(server, "plus").get(2, {}).get("status", {})
                            .get("error_message"), timeout=60, what="version 2's first failure")
        assert "(attempt 1 of 6 failed; retrying in 60 s)" in retrying
        assert str(base) not in retrying and str(tmp_path) not in retrying
        assert status_of(server, "plus")[2]["state"] == "LOADING"
        assert status_of(server, "plus")[2]["status"]["error_code"] != "OK"
        # A good newer version is not held back by the retrying one.
        shutil.copytree(plus_version_builds / "3", tmp_path / ".incoming-3")
        (tmp_path / ".incoming-3").rename(base / "3")
        server.wait_state("plus", 3, timeout=30)
        response = server.post("/v1/models/plus:predict", {"instances": [1.0]})
        assert response.json() == {"predictions": [4.0]}
        still = status_of(server, "plus")[2]
        assert still["state"] == "LOADING" and "retrying in 60 s" in still["status"]["error_message"]
    finally:
        server.stop()


def test_a_version_folder_linking_outside_the_base_path_is_not_loaded(
        tmp_path: Path, plus_version_builds: Path) -> None:
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    outside = tmp_path / "elsewhere"
    shutil.copytree(plus_version_builds / "2", outside)
    inside = base / ".store-3"
    shutil.copytree(plus_version_builds / "3", inside)
    server = start_server("--model_name=plus", f"--model_base_path={base}", log_dir=tmp_path)
    try:
        server.wait_state("plus", 1)
        (base / "2").symlink_to(outside, target_is_directory=True)
        server.wait_state("plus", 2, "END")
        refused = status_of(server, "plus")[2]
        assert refused["status"]["error_message"] == (
            "Version folder 2 of model plus is a link to a folder outside the model's base "
            "path; refusing to load it")
        assert refused["status"]["error_code"] == "FAILED_PRECONDITION"
        assert server.post("/v1/models/plus:predict", {"instances": [1.0]}).json() == \
            {"predictions": [2.0]}
        assert f"links to {outside}, outside its base path; not loading it" in server.log()
        # A link that stays inside the base path is an ordinary version.
        (base / "3").symlink_to(inside, target_is_directory=True)
        server.wait_state("plus", 3)
    finally:
        server.stop()
