"""`python -m api.serve`: the service on waitress, with the scheduler running from the start."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

import waitress

from api import ConfigurationError, create_app, start_background

log = logging.getLogger("segments")


def main() -> None:
    """Parse the command line and serve until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description="Run the segments service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        # Off the request path: the write-ahead log is copied back by the scheduler's thread.
        app = create_app({"WAL_CHECKPOINT_SECONDS": 1.0})
    except ConfigurationError as exc:
        sys.exit(f"error: {exc.message}")
    try:
        # Bound before anything starts: a second service on the port stops here, and says so.
        server = waitress.create_server(
            app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="segments",
            # waitress reads a body before the app sees the request (1 GiB by default): no
            # more than the app takes, or a caller without a key fills the disk.
            max_request_body_size=app.config["MAX_CONTENT_LENGTH"],
        )
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    start_background(app)
    signal.signal(signal.SIGTERM, _stop)
    log.info("serving on http://%s:%d with %s", args.host, args.port, app.config["SEGMENTS_DB"])
    server.run()  # until _stop: then requests under way finish (up to 5 s)
    log.info("stopped")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # what waitress stops on, as for Ctrl-C


if __name__ == "__main__":
    main()
