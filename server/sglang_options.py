"""SGLang's own server options on ``python -m server``'s command line.

The options are generated from SGLang's argument definitions
(``ServerArgs.add_cli_args``), so every option of the installed SGLang is accepted
with SGLang's own help, types and choices. An option whose flag or destination our
settings also define is left out: ours wins, and ``--help`` says which ones.

An option the user does not give is not passed on: the engine gets only the options
given, by their ``ServerArgs`` field names (:func:`given_options`), so every other one
keeps SGLang's default, or the one the plugin picks on a CPU (a KV pool of 32768
tokens when ``--max-total-tokens`` is unset, for one). ``--config FILE`` reads options
from a YAML file as ``sglang.launch_server`` does; options given on the command line
win over the file's.
"""

from __future__ import annotations

import argparse

GROUP_TITLE = "SGLang engine options"
GROUP_DESCRIPTION = (
    "Every option of sglang.launch_server, passed to the in-process engine. Only the "
    "options given are passed: the others keep SGLang's default, or on a CPU the one the "
    "soft-thinking plugin picks. Options soft thinking cannot run with (e.g. "
    "--enable-torch-compile, --speculative-algorithm, --pp-size > 1) stop the start with a "
    "message saying why.")


class _FilteredGroup:
    """What ``ServerArgs.add_cli_args`` adds its options to: an argument group that
    leaves out the options ours define and records no default for the others."""

    def __init__(self, group, own_flags: set[str], own_dests: set[str]):
        self._group = group
        self._own_flags = own_flags
        self._own_dests = own_dests
        self.dests: set[str] = set()
        self.shadowed: list[str] = []

    def add_argument(self, *names: str, **kwargs):
        dest = kwargs.get("dest") or names[0].lstrip("-").replace("-", "_")
        if dest in self._own_dests or self._own_flags.intersection(names):
            self.shadowed.append(names[0])
            return None
        default, help_text = kwargs.get("default"), kwargs.get("help")
        if default not in (None, False, "") and help_text not in (None, argparse.SUPPRESS):
            kwargs["help"] += f" (SGLang default: {str(default).replace('%', '%%')})"
        kwargs["default"] = argparse.SUPPRESS  # absent from the namespace unless given
        kwargs.pop("required", None)  # --model-path, SGLang's one required option, is ours
        self.dests.add(dest)
        return self._group.add_argument(*names, **kwargs)


def add_sglang_options(parser: argparse.ArgumentParser, own_flags: set[str],
                       own_dests: set[str]) -> set[str]:
    """Add SGLang's options to ``parser``, but those sharing a flag or destination with ours.

    Returns the destinations added. The shadowed flags are named in the parser's epilog.
    """
    from sglang.srt.server_args import ServerArgs

    group = _FilteredGroup(parser.add_argument_group(GROUP_TITLE, GROUP_DESCRIPTION),
                           own_flags, own_dests)
    ServerArgs.add_cli_args(group)
    shadowed = ", ".join(sorted(group.shadowed))
    parser.epilog = (f"Where a flag is both ours and SGLang's, ours wins: {shadowed}. "
                     "--host and --port are this HTTP server's; --api-key guards its routes.")
    return group.dests


def merge_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the options of a ``--config`` YAML file put before the given ones."""
    if "--config" not in argv:
        return argv
    from sglang.srt.utils.server_args_config_parser import ConfigArgumentMerger

    try:
        return ConfigArgumentMerger(parser).merge_config_with_args(argv)
    except ValueError as error:
        parser.error(f"--config: {error}")


def given_options(namespace: argparse.Namespace, sglang_dests: set[str]) -> dict:
    """The SGLang options the user gave, by ``ServerArgs`` field name, ready for the engine."""
    from sglang.srt.arg_groups.arg_utils import record_fields
    from sglang.srt.server_args import ServerArgs

    fields = {field.name for field in record_fields(ServerArgs)}
    options = {dest: getattr(namespace, dest) for dest in sglang_dests
               if hasattr(namespace, dest) and dest in fields}
    if "radix_eviction_policy" in options:
        # As sglang.launch_server records it: model defaults then leave the policy alone.
        options["_radix_eviction_policy_explicitly_set"] = True
    return options
