"""`python -m api.serve`: the service on waitress, with the scheduler running from the start."""

from __future__ import annotations

import argparse
import logging

import waitress

from api import create_app, start_background


def main() -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description="Run the segments service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Off the request path: the write-ahead log is copied back by the scheduler's thread.
    app = create_app({"WAL_CHECKPOINT_SECONDS": 1.0})
    start_background(app)
    logging.getLogger("segments").info(
        "serving on http://%s:%d with %s", args.host, args.port, app.config["SEGMENTS_DB"]
    )
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="segments")


if __name__ == "__main__":
    main()
