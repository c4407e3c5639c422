"""Tab completion of %tfserve and %%predict, and their help, through a real IPython shell's
``complete()`` and ``run_cell`` (what a notebook's Tab and Shift-Enter reach)."""

from __future__ import annotations


def complete(ip, line: str) -> list[str]:
    """What Tab offers at the end of ``line``, as ipykernel asks for it."""
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(line, len(line))]


def test_subcommands_and_options_complete(ip) -> None:
    assert complete(ip, "%tfserve st") == ["start", "stop", "status"]
    assert {"list", "push", "dashboard", "connect", "--help"} <= set(complete(ip, "%tfserve "))
    assert complete(ip, "%tfserve stop --a") == ["--all"]
    start = complete(ip, "%tfserve start --")
    assert {"--config", "--name", "--grpc-port", "--batching", "--detach"} <= set(start)
    assert all(option.startswith("--") for option in start)
    assert set(complete(ip, "%%predict m --")) == {
        "--version", "--label", "--signature", "--columnar", "--server", "--grpc", "--output",
        "--help"}


def test_server_and_model_names_complete(ip, capsys, tmp_path, half_plus_two, multi_io) -> None:
    config = tmp_path / "other.config"
    config.write_text(f'model_config_list {{ config {{ name: "mio" base_path: "{multi_io}" '
                      'model_platform: "tensorflow" } }')
    ip.run_line_magic("tfserve", f"start {half_plus_two}")
    ip.run_line_magic("tfserve", f"start --config {config}")
    assert "Started server other" in capsys.readouterr().out
    assert complete(ip, "%tfserve status ") == ["half_plus_two", "other"]
    assert complete(ip, "%tfserve stop o") == ["other"]
    assert complete(ip, "%tfserve logs -n 5 h") == ["half_plus_two"]
    assert complete(ip, "%tfserve signatures m") == ["mio"]  # a model (of server other)
    assert complete(ip, "%tfserve signatures mio --server ") == ["half_plus_two", "other"]
    assert complete(ip, "%%predict ") == ["half_plus_two", "mio"]
    assert complete(ip, "%%predict half_plus_two --server o") == ["other"]
    # Where a value is not a recorded name (a new server's name), none is offered.
    assert "other" not in complete(ip, "%tfserve start --name ")


def test_help_works_alone_and_names_predict(ip, capsys) -> None:
    result = ip.run_cell("%%predict --help")
    assert result.success, result.error_in_exec or result.error_before_exec
    out = capsys.readouterr().out
    assert out.startswith("usage: %%predict") and "--signature" in out and "--grpc" in out
    # An empty cell is told what to write, by %%predict itself, not IPython's UsageError.
    result = ip.run_cell("%%predict half_plus_two\n")
    captured = capsys.readouterr()
    assert "the cell is empty: write an array, a list, a dict or JSON" in captured.err
    assert "cell body is empty" not in captured.out + captured.err
    # %%predict? shows the options (and no hint that would fail).
    ip.run_cell("%%predict?")
    shown = capsys.readouterr().out
    assert "usage: %%predict" in shown and "--label LABEL" in shown
    ip.run_line_magic("tfserve", "--help")
    assert "%%predict MODEL" in capsys.readouterr().out
