"""Every hook of the plugin is in place, or the start stops naming the one that is not.

SGLang's hook registry only logs a hook it cannot apply (and a plugin whose registration
raises); plugin.verify_hooks turns either into an error, called at start-up in the server
process (ServerArgs.resolve_once) and in every scheduler (before graph capture). Run in a
fresh interpreter: hooks are applied to SGLang's classes once per process.
"""

import subprocess
import sys

SCRIPT = """
import sglang_soft_thinking.hooks.sampler as sampler
{break_it}
from sglang.srt.plugins import load_plugins
load_plugins()
from sglang.srt.server_args import ServerArgs
from sglang_soft_thinking import plugin
from sglang_soft_thinking.hooks import server_args
print("missing:", plugin.missing_hooks())
try:
    server_args._after_resolve(None, ServerArgs(model_path="x"))
    print("started")
except RuntimeError as error:
    print("refused:", error)
"""


def run(break_it: str) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(break_it=break_it)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_hook_sglang_cannot_apply_stops_the_start_naming_it():
    """Every other hook applies (every server start checks that too); the one whose target
    does not exist is named, and the start stops."""
    target = "sglang.srt.layers.sampler.Sampler.no_such_method"
    out = run(f"sampler.SAMPLER_FORWARD = {target!r}")
    assert f"missing: ['{target}']" in out
    assert "refused: soft thinking: these hooks are not in place" in out and target in out
