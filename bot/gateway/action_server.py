"""``python -m bot.gateway.action_server --port N``: the rasa-sdk action server, on loopback.

The action server has no authentication: whoever reaches its port can run
``action_submit_*`` or ``action_check_ticket`` for any sender id. ``python -m rasa_sdk``
(3.6) has no interface option and listens on ``0.0.0.0``; this launcher takes rasa-sdk's own
arguments plus ``--interface`` (default ``127.0.0.1``: only Rasa on this machine calls it; in
the scaled setup give the private network's address, never a public one), binds the socket
itself and serves rasa-sdk's app on it. A taken port fails at once, with a message naming
it and a non-zero exit (rasa-sdk logs the bind error and exits 0).
"""
from __future__ import annotations

import logging
import socket
import sys
from typing import List, Optional

LOOPBACK = "127.0.0.1"


class PortInUse(OSError):
    """A port the project was told to use is taken (or not bindable) on its interface."""


def bind(interface: str, port: int) -> socket.socket:
    """A listening TCP socket on ``interface:port`` (no SO_REUSEPORT: a second server on the
    same port fails here instead of sharing it)."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise PortInUse(exc.errno, f"cannot listen on {interface}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def main(argv: Optional[List[str]] = None) -> int:
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_app, create_argument_parser, create_ssl_context
    from rasa_sdk.plugin import plugin_manager

    parser = create_argument_parser()
    parser.add_argument("--interface", default=LOOPBACK,
                        help="address to listen on (default 127.0.0.1; never a public one)")
    args = parser.parse_args(argv)
    try:
        sock = bind(args.interface, args.port)
    except PortInUse as exc:
        print(f"action server: {exc.strerror}; choose another port (--port)", file=sys.stderr, flush=True)
        return 2
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file,
                                 args.loglevel, args.logging_config_file)
    utils.update_sanic_log_level()
    app = create_app(args.actions, cors_origins=args.cors, auto_reload=args.auto_reload)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    logging.getLogger(__name__).info("action server on %s:%d", args.interface, args.port)
    app.run(sock=sock, ssl=ssl_context, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
