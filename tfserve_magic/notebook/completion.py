"""Tab completion for ``%tfserve`` and ``%%predict``, and ``%%predict --help`` on its own.

Completion is read off the magics' own argparse parsers, so it cannot drift from what the
magics accept: ``%tfserve st<Tab>`` offers the subcommands ``start``, ``status``, ``stop``;
``--<Tab>`` a subcommand's options; where a command takes a server (``stop``, ``status``,
``--server``, ...) the recorded servers' names, and where it takes a model the models they serve.
Names come from the registry's files, never from a request, so a Tab never waits on a network.
The completer is an IPython completion matcher; where it has nothing to offer, IPython's own
completion (paths, variables) runs instead.

IPython refuses a cell magic whose body is empty before the magic runs, so ``%%predict --help``
alone would be a ``UsageError``; ``give_empty_predict_cells_a_body`` (an input transformer)
hands such a cell a blank body, and ``%%predict`` then answers itself (its help, or what to
write in the cell). No TensorFlow, no requests.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from tfserve_magic.lifecycle import registry

__all__ = ["give_empty_predict_cells_a_body", "install", "magic_matcher"]

ParserFactory = Callable[[], argparse.ArgumentParser]

# What a positional argument or an option's value names, by (subcommand, dest), beside every
# --server: the rest (paths, notebook variables, URLs, new names) is left to IPython's own
# completion.
_SERVER, _MODEL = "server", "model"
_VALUES = {
    ("stop", "name"): _SERVER, ("status", "name"): _SERVER, ("logs", "name"): _SERVER,
    ("reload", "name"): _SERVER, ("url", "name"): _SERVER, ("dashboard", "name"): _SERVER,
    ("disconnect", "name"): _SERVER,
    ("signatures", "model"): _MODEL, ("push", "name"): _MODEL, ("predict", "model"): _MODEL,
}


def _kind(command: str, action: argparse.Action) -> str | None:
    return _VALUES.get((command, action.dest)) or (_SERVER if action.dest == "server" else None)


def _names(kind: str) -> list[str]:
    records = registry.read_records()
    if kind == _SERVER:
        return sorted({r.name for r in records})
    return sorted({m for r in records for m in r.models})


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an open quote: complete on what can be read
        return text.split()


def _candidates(parser: argparse.ArgumentParser, command: str, words: Sequence[str],
                current: str) -> list[str]:
    """What may come at ``current`` after ``words`` (the arguments before it)."""
    subcommands = _subcommands(parser)
    if subcommands:
        if not words:
            return [*subcommands, "--help"]
        if words[0] not in subcommands:
            return []
        command, parser, words = words[0], subcommands[words[0]], words[1:]
    options = _options(parser)
    previous = options.get(words[-1]) if words else None
    if previous is not None and previous.nargs != 0:  # the option's value comes now
        kind = _kind(command, previous)
        return _names(kind) if kind else []
    if current.startswith("-"):
        return sorted(options)
    taken = sum(1 for i, word in enumerate(words) if not word.startswith("-") and not (
        i and (option := options.get(words[i - 1])) is not None and option.nargs != 0))
    positionals = _positionals(parser)
    if taken >= len(positionals):
        return []
    kind = _kind(command, positionals[taken])
    return _names(kind) if kind else []


def magic_matcher(tfserve: ParserFactory,
                  predict: ParserFactory) -> Callable[[Any], dict[str, Any]]:
    """An IPython completion matcher (API v2) for ``%tfserve`` lines and ``%%predict`` cells,
    whose parsers ``tfserve`` and ``predict`` build. What it offers replaces every other
    matcher's guesses (Jedi would read ``--a`` as Python); where it offers nothing, IPython's own
    completion runs."""
    from IPython.core.completer import SimpleCompletion

    parsers = {"%tfserve": functools.cache(tfserve), "%%predict": functools.cache(predict)}

    def match(context: Any) -> dict[str, Any]:
        before = str(context.text_until_cursor).lstrip()
        words = _words(before)
        magic = words[0] if words and before[:1] == "%" else ""
        if magic not in parsers or (magic == "%%predict" and context.cursor_line != 0):
            return {"completions": [], "suppress": False}
        current = "" if before[-1:].isspace() else before.split()[-1]
        words = words[1:-1] if current else words[1:]
        found = [c for c in _candidates(parsers[magic](), magic.lstrip("%"), words, current)
                 if c.startswith(current)]
        token = str(context.token)
        # IPython replaces its own token, which may be the end of our word (it splits at ":").
        cut = len(current) - len(token) if current.endswith(token) else 0
        return {"completions": [SimpleCompletion(c[cut:], type="tfserve") for c in found],
                "suppress": bool(found), "ordered": True}

    # What IPython's (untyped) completion_matcher decorator would set: API v2, our identifier.
    match.__dict__.update(matcher_api_version=2, matcher_identifier="tfserve_magic",
                          matcher_priority=0)
    return match


def give_empty_predict_cells_a_body(lines: list[str]) -> list[str]:
    """A ``%%predict ...`` cell with nothing under it gets a blank line as its body, so that
    ``%%predict --help`` answers and an empty cell is told what to write (IPython itself raises
    "the cell body is empty" before the magic could say either)."""
    if lines and lines[0].startswith("%%predict") and not "".join(lines[1:]).strip():
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines


def install(shell: Any, tfserve: ParserFactory, predict: ParserFactory) -> None:
    """Register the completion matcher and the transformer with ``shell`` (once, however often
    the extension is loaded)."""
    if give_empty_predict_cells_a_body in shell.input_transformers_cleanup:
        return
    try:  # completion matchers API v2 came with IPython 8.6
        from IPython.core.completer import SimpleCompletion  # noqa: F401
    except ImportError:  # IPython 7 (Colab's): no Tab completion of our options; the rest works
        pass
    else:
        shell.Completer.custom_matchers.append(magic_matcher(tfserve, predict))
    shell.input_transformers_cleanup.append(give_empty_predict_cells_a_body)

