"""``petrel daemon``: options and start-up (logging, configuration, metrics, service)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .errors import EXIT_OK, EXIT_USAGE, UsageError


def run_daemon(args: argparse.Namespace) -> int:
    from ..config.errors import ConfigError
    from ..config.swanctl import load_swanctl
    from ..daemon import Daemon, DaemonOptions
    from ..ike.engine import EngineSettings
    from ..logsetup import setup_logging
    from ..metrics.http import parse_listen
    from ..policy.connection import SwanctlConfig

    try:
        setup_logging(args.log, args.log_format)
    except ValueError as exc:
        raise UsageError(f"--log {args.log!r}: {exc}") from None
    if args.metrics is not None:
        try:
            parse_listen(args.metrics)
        except ValueError as exc:
            raise UsageError(f"--metrics: {exc}") from None
    try:
        config = load_swanctl(args.config) if args.config else SwanctlConfig({})
    except ConfigError as exc:
        print(f"petrel daemon: {exc}", file=sys.stderr)
        return EXIT_USAGE  # a bad file: systemd's RestartPreventExitStatus=2 stops retrying
    engine = EngineSettings(
        retransmit_timeout=args.retransmit_timeout,
        retransmit_tries=args.retransmit_tries,
        retransmit_base=args.retransmit_base,
        fragment_size=args.fragment_size,
    )
    options = DaemonOptions(
        control_socket=args.socket,
        tun_name=args.tun,
        engine=engine,
        udp_gso=args.udp_gso,
        save_keys=args.save_keys,
        config_path=args.config,
        metrics=args.metrics,
    )
    asyncio.run(Daemon(config, options).run())
    return EXIT_OK


def _ifname(text: str) -> str:
    if not text or len(text.encode()) > 15 or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not an interface name: {text!r} (1-15 bytes, no / )")
    return text


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    daemon = sub.add_parser("daemon", help="run the IKE daemon in the foreground")
    daemon.add_argument(
        "--config",
        help="swanctl.conf file, or a folder holding swanctl.conf, re-read on SIGHUP "
        "(none: start empty, configure over VICI, e.g. petrel load or swanctl --load-all)",
    )
    daemon.add_argument(
        "--log",
        default="1",
        help="log levels, charon style: '1' or 'ike=2,chd=1,net=0' (groups dmn mgr ike chd "
        "cfg knl net enc esp lib …; -1..4, default 1)",
    )
    daemon.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text (default) or one JSON object per line",
    )
    daemon.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9273)",
    )
    daemon.add_argument(
        "--tun", type=_ifname, default="petrel%d", help="TUN device name (default petrel%%d)"
    )
    daemon.add_argument(
        "--udp-gso",
        action="store_true",
        help="send UDP-encapsulated ESP in GSO batches (experimental, see README)",
    )
    daemon.add_argument(
        "--save-keys",
        metavar="DIR",
        help="write every SA's keys to DIR in Wireshark's key-table formats (debugging only: "
        "whoever reads them can decrypt the traffic)",
    )
    daemon.add_argument(
        "--fragment-size",
        type=int,
        default=1280,
        help="IP datagram size of IKE fragments, RFC 7383 (default 1280)",
    )
    daemon.add_argument(
        "--retransmit-timeout",
        type=float,
        default=4.0,
        help="first IKE retransmission after this many seconds (default 4)",
    )
    daemon.add_argument(
        "--retransmit-base",
        type=float,
        default=1.8,
        help="back-off factor between IKE retransmissions (default 1.8)",
    )
    daemon.add_argument(
        "--retransmit-tries",
        type=int,
        default=5,
        help="IKE retransmissions before giving up (default 5)",
    )
    return daemon
