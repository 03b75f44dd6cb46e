"""``python -m server [flags]``: start the engine, then serve the OpenAI API until stopped."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from server.models import model_dir_problem
from server.settings import ServerSettings, parse_settings
from server.soft_thinking import DefaultsFileError, load_defaults
from server.softcot import SoftCoTService, SoftCoTStartupError
from softcot_plugin.checkpoint import CheckpointError
from softcot_plugin.templates import TemplateError

logger = logging.getLogger("server")


def serve(settings: ServerSettings, softcot: SoftCoTService | None = None) -> None:
    import uvicorn

    from server.app import create_app
    from server.engine import EngineHandle

    handle = EngineHandle.start(settings)
    try:
        app = create_app(handle, settings, softcot)
        # On SIGTERM or Ctrl-C uvicorn stops accepting, lets in-flight requests run for
        # up to shutdown_timeout seconds, then cancels them, which aborts their engine
        # requests; the engine's subprocesses are stopped below in any case.
        config = uvicorn.Config(app, host=settings.host, port=settings.port,
                                log_level=settings.log_level,
                                access_log=settings.log_level == "debug",
                                timeout_graceful_shutdown=settings.shutdown_timeout)
        server = uvicorn.Server(config)
        loop = handle.engine.loop

        async def run() -> None:
            # Start the engine's result loop now, on this event loop, so that its signal
            # handlers are in place before uvicorn's: SIGTERM and Ctrl-C then stop uvicorn.
            handle.engine.tokenizer_manager.auto_create_handle_loop()
            logger.info("serving %s on http://%s:%d/v1", handle.model_name,
                        settings.host, settings.port)
            await server.serve()

        loop.run_until_complete(run())
    finally:
        handle.shutdown()
        if softcot is not None:
            softcot.close()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_settings(argv)
    except ValidationError as error:
        problems = "; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
                             for e in error.errors())
        print(f"error: {problems}", file=sys.stderr)
        return 2
    problem = model_dir_problem(settings.resolved_model_path())
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:  # before the engine starts, so that a file or checkpoint that does not fit fails fast
        settings.export_environment()
        load_defaults(settings.soft_thinking)
        softcot = SoftCoTService.load(settings)
    except (CheckpointError, TemplateError, SoftCoTStartupError, DefaultsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from server.engine import EngineStartError
    from server.think_markers import ThinkMarkersError

    try:
        serve(settings, softcot)
    except (EngineStartError, ThinkMarkersError, DefaultsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
