"""The server's command line as the launcher builds it: our defaults, the user's flags after
them, a default left out only when the user gave that very flag (by name, not by substring)."""

from __future__ import annotations

from pathlib import Path

from tfserve_magic.lifecycle.command import flag_names, server_argv
from tfserve_magic.lifecycle.handle import ServerSpec


def test_flag_names_are_names_not_values() -> None:
    flags = ("--max_num_load_retries=3", "--verbose", "--port", "9000",
             "--model_name=--enable_batching")
    assert flag_names(flags) == {"max_num_load_retries", "verbose", "port", "model_name"}


def test_a_user_flag_replaces_the_default_of_that_name_only(runtime_dir: Path) -> None:
    config = str(runtime_dir / "m.models.config")
    spec = ServerSpec(model_dir="/m", batching=True, verbose=True,
                      extra_flags=("--max_num_load_retries=3",))
    argv = server_argv(spec, config)
    assert "--max_num_load_retries=0" not in argv and argv[-1] == "--max_num_load_retries=3"
    assert "--enable_batching" in argv and "--verbose" in argv
    assert Path(next(a for a in argv if a.startswith("--batching_parameters_file="))
                .partition("=")[2]).is_file()
    # A value that merely mentions a flag's name does not count as giving that flag (the old
    # substring test of the joined flags did).
    mentions = ServerSpec(model_dir="/m", batching=True, verbose=True,
                          extra_flags=("--model_name=--enable_batching--verbose",
                                       "--saved_model_tags=--max_num_load_retries"))
    argv = server_argv(mentions, config)
    assert {"--enable_batching", "--verbose", "--max_num_load_retries=0"} <= set(argv)
