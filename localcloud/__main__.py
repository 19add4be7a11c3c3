"""Run localcloud: ``python -m localcloud --port 8790`` (binds 127.0.0.1; stops on SIGTERM/SIGINT)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8790, help="port to bind (default 8790; 0 picks a free one)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s localcloud %(levelname)s %(message)s")

    from localcloud.server import serve

    server = serve(args.host, args.port)
    stop = threading.Event()

    def shutdown(signum, frame):  # serve_forever blocks: shut it down from another thread
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(f"localcloud listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    server.app.operations.stop_ticker()
    return 0


if __name__ == "__main__":
    sys.exit(main())
