"""`petrel …`: the daemon, a VICI client for controlling it, the capture decoder and the demo."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType, TracebackType

DEFAULT_SOCKET = os.environ.get("PETREL_VICI", "/run/petrel.vici")


def _cmd_daemon(args: argparse.Namespace) -> int:
    from .config.errors import ConfigError
    from .config.swanctl import load_swanctl
    from .daemon import Daemon, DaemonOptions
    from .logsetup import setup_logging
    from .policy.connection import SwanctlConfig

    try:
        setup_logging(args.log)
    except ValueError as exc:
        raise UsageError(f"--log {args.log!r}: {exc}") from None
    try:
        config = load_swanctl(args.config) if args.config else SwanctlConfig({})
    except ConfigError as exc:
        print(f"petrel daemon: {exc}", file=sys.stderr)
        return 2
    from .ike.engine import EngineSettings

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
    )
    asyncio.run(Daemon(config, options).run())
    return 0


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .control.client import ViciClient

    try:
        return ViciClient(args.socket)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "run as root" if isinstance(exc, PermissionError) else "is petrel daemon running?"
        raise SystemExit(
            f"petrel {args.command}: cannot reach the daemon at {args.socket}: {reason} ({hint})"
        ) from None


def _cmd_initiate(args: argparse.Namespace) -> int:
    client = _client(args)
    message = {"child": args.child} if args.child else {"ike": args.ike}
    message["timeout"] = str(int(args.timeout * 1000))
    reply = client.request("initiate", message)
    client.close()
    ok = reply.get("success") == "yes"
    print("initiate completed successfully" if ok else f"initiate failed: {reply.get('errmsg')}")
    return 0 if ok else 1


def _cmd_terminate(args: argparse.Namespace) -> int:
    client = _client(args)
    message: dict[str, str] = {}
    for key in ("ike", "child", "ike_id"):
        value = getattr(args, key)
        if value:
            message[key.replace("_", "-")] = str(value)
    reply = client.request("terminate", message)
    client.close()
    ok = reply.get("success") == "yes"
    print(
        f"terminated {reply.get('terminated', 0)} IKE SA(s)"
        if ok
        else f"terminate failed: {reply.get('errmsg')}"
    )
    return 0 if ok else 1


def _cmd_list_sas(args: argparse.Namespace) -> int:
    import json

    client = _client(args)
    events, _reply = client.streamed("list-sas", "list-sa", {})
    client.close()
    if args.json:
        for event in events:
            print(json.dumps(event))
        return 0
    for event in events:
        for name, sa in event.items():
            print(format_ike_sa(name, sa))
    return 0


def _cmd_rekey(args: argparse.Namespace) -> int:
    client = _client(args)
    message: dict[str, str] = {}
    for key in ("ike", "child", "ike_id", "child_id"):
        value = getattr(args, key)
        if value:
            message[key.replace("_", "-")] = str(value)
    if args.reauth:
        message["reauth"] = "yes"
    reply = client.request("rekey", message)
    client.close()
    ok = reply.get("success") == "yes"
    print(
        f"rekeying {reply.get('matches')} SA(s)" if ok else f"rekey failed: {reply.get('errmsg')}"
    )
    return 0 if ok else 1


def _cmd_stats(args: argparse.Namespace) -> int:
    import json

    client = _client(args)
    reply = client.request("stats", {})
    client.close()
    print(json.dumps(reply, indent=2))
    return 0


def format_ike_sa(name: str, sa: dict) -> str:  # type: ignore[type-arg]
    """swanctl --list-sas style text for one ``list-sa`` event."""
    lines = [
        f"{name}: #{sa.get('uniqueid')}, {sa.get('state')}, IKEv2, "
        f"{sa.get('initiator-spi')}_i{'*' if sa.get('initiator') == 'yes' else ''} "
        f"{sa.get('responder-spi')}_r{'' if sa.get('initiator') == 'yes' else '*'}",
        f"  local  '{sa.get('local-id')}' @ {sa.get('local-host')}[{sa.get('local-port')}]",
        f"  remote '{sa.get('remote-id')}' @ {sa.get('remote-host')}[{sa.get('remote-port')}]",
    ]
    if sa.get("encr-alg"):
        algs = [f"{sa['encr-alg']}" + (f"-{sa['encr-keysize']}" if sa.get("encr-keysize") else "")]
        algs += [sa[k] for k in ("integ-alg", "prf-alg", "dh-group") if sa.get(k)]
        lines.append("  " + "/".join(algs))
    if sa.get("established"):
        lines.append(f"  established {sa['established']}s ago")
    for child_name, child in (sa.get("child-sas") or {}).items():
        encap = ", UDP_ENCAP" if child.get("encap") == "yes" else ""
        algs = child.get("encr-alg", "")
        if child.get("encr-keysize"):
            algs += f"-{child['encr-keysize']}"
        if child.get("integ-alg"):
            algs += f"/{child['integ-alg']}"
        lines += [
            f"  {child.get('name', child_name)}: #{child.get('uniqueid')}, "
            f"{child.get('state')}, {child.get('mode')}, ESP{encap}",
            f"    SPIs: {child.get('spi-in')}_i {child.get('spi-out')}_o, {algs}",
            f"    in  {child.get('spi-in')}, {child.get('bytes-in')} bytes, "
            f"{child.get('packets-in')} packets",
            f"    out {child.get('spi-out')}, {child.get('bytes-out')} bytes, "
            f"{child.get('packets-out')} packets",
            f"    local  {' '.join(child.get('local-ts') or [])}",
            f"    remote {' '.join(child.get('remote-ts') or [])}",
        ]
    return "\n".join(lines)


def _cmd_decode(args: argparse.Namespace, rest: Sequence[str]) -> int:
    from .decode.cli import decode_main

    return decode_main(list(rest))


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(args)


def _ifname(text: str) -> str:
    if not text or len(text.encode()) > 15 or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not an interface name: {text!r} (1-15 bytes, no / )")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petrel", description=__doc__)
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"VICI control socket (default {DEFAULT_SOCKET}, env PETREL_VICI)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error instead of one line (env PETREL_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    daemon = sub.add_parser("daemon", help="run the IKE daemon in the foreground")
    daemon.add_argument(
        "--config",
        help="swanctl.conf file, or a folder holding swanctl.conf "
        "(none: start empty, configure over VICI, e.g. swanctl --load-all)",
    )
    daemon.add_argument(
        "--log", default="1", help="log levels, charon style: '1' or 'ike=2,esp=1' (default 1)"
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
    daemon.set_defaults(func=_cmd_daemon)

    initiate = sub.add_parser("initiate", help="bring up a Child SA (and its IKE SA)")
    target = initiate.add_mutually_exclusive_group(required=True)
    target.add_argument("--child", help="child name")
    target.add_argument("--ike", help="connection name")
    initiate.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    initiate.set_defaults(func=_cmd_initiate)

    terminate = sub.add_parser("terminate", help="delete IKE SAs")
    terminate.add_argument("--ike", help="connection name")
    terminate.add_argument("--child", help="child name (terminates its IKE SA)")
    terminate.add_argument("--ike-id", type=int, help="IKE SA unique id")
    terminate.set_defaults(func=_cmd_terminate)

    list_sas = sub.add_parser("list-sas", help="list IKE and Child SAs")
    list_sas.add_argument("--json", action="store_true", help="one JSON object per IKE SA")
    list_sas.set_defaults(func=_cmd_list_sas)

    rekey = sub.add_parser("rekey", help="rekey Child or IKE SAs (VICI rekey)")
    rekey_target = rekey.add_mutually_exclusive_group(required=True)
    rekey_target.add_argument("--child", help="child name")
    rekey_target.add_argument("--ike", help="connection name (rekeys the IKE SA)")
    rekey_target.add_argument("--child-id", type=int, help="Child SA unique id")
    rekey_target.add_argument("--ike-id", type=int, help="IKE SA unique id")
    rekey.add_argument("--reauth", action="store_true", help="reauthenticate the IKE SA")
    rekey.set_defaults(func=_cmd_rekey)

    stats = sub.add_parser("stats", help="daemon statistics and drop counters (JSON)")
    stats.set_defaults(func=_cmd_stats)

    decode = sub.add_parser(
        "decode", add_help=False, help="dissect IKEv2 in a capture (petrel decode --help)"
    )
    decode.set_defaults(func=None)

    demo = sub.add_parser("demo", help="two namespaces, a real tunnel, traffic through it")
    demo.add_argument("--seconds", type=float, default=3.0, help="throughput test duration")
    demo.add_argument(
        "--no-strongswan",
        action="store_true",
        help="skip the Petrel↔strongSwan pair even when strongSwan is installed",
    )
    demo.set_defaults(func=_cmd_demo)

    pki = sub.add_parser(
        "pki", add_help=False, help="keys, certificates and CRLs (petrel pki --help)"
    )
    pki.set_defaults(func=None)  # dispatched before parsing: its module loads the PKI code
    return parser


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (a bad ``--log`` spec, …)."""


# Where in Petrel an OSError arose (the innermost petrel function on its traceback) → what was
# being done, for the one-line message; f_locals of that frame fill in the details.
_DOING = {
    "open_udp": "cannot bind UDP {host}:{port}",
    "open_esp_raw": "cannot open a raw ESP socket on {host}",
    "open_tun": "cannot open a TUN device ({name})",
    "_remove_stale": "control socket {path}",
    "start_server": "control socket {path}",
}


def _petrel_frame(tb: TracebackType | None) -> FrameType | None:
    """The innermost frame of the petrel package on a traceback."""
    found = None
    package = os.path.dirname(os.path.abspath(__file__))
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(package):
            found = tb.tb_frame
        tb = tb.tb_next
    return found


def _hint(exc: OSError, doing: str) -> str:
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "run it as root"
    if code == errno.EADDRINUSE and doing.startswith("cannot bind"):
        return "another IKE daemon, charon or petrel, holds the port: stop it first"
    if code == errno.EADDRINUSE:
        return "another petrel daemon is running: stop it or give --socket another path"
    if doing.startswith("cannot open a TUN") and code in (errno.ENOENT, errno.ENODEV):
        return "the kernel's TUN driver is missing: modprobe tun"
    if code == errno.EADDRNOTAVAIL:
        return "no interface holds that address: check local_addrs"
    if isinstance(exc, ConnectionError | FileNotFoundError) and "vici" in str(exc).lower():
        return "is the daemon running? (petrel daemon, or --socket)"
    return ""


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong (and, when known, what to do) for a user-facing error."""
    from .lab.netns import INSTALL_HINT, LAB_PROGRAMS, PeerStartError

    if isinstance(exc, PeerStartError):
        return exc.summary
    if isinstance(exc, subprocess.CalledProcessError):
        argv = exc.cmd if isinstance(exc.cmd, list | tuple) else [exc.cmd]
        shown = " ".join(str(a) for a in argv if "\n" not in str(a))
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        last = (err or "").strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        return f"command failed: {shown}: {last[0]}"
    if isinstance(exc, FileNotFoundError) and exc.filename in LAB_PROGRAMS:
        package = LAB_PROGRAMS[exc.filename]
        return f"program not found: {exc.filename}; install {package} ({INSTALL_HINT})"
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None:
            text = f"{exc.filename}: {text}"
        doing = ""
        frame = _petrel_frame(exc.__traceback__)
        if frame is not None and frame.f_code.co_name in _DOING:
            values = {k: v for k, v in frame.f_locals.items() if isinstance(v, str | int)}
            try:
                doing = _DOING[frame.f_code.co_name].format(**values)
            except (KeyError, IndexError):
                doing = ""
        if doing and not (exc.filename is not None and str(exc.filename) in doing):
            text = f"{doing}: {text}"
        hint = _hint(exc, doing)
        return f"{text} ({hint})" if hint else text
    return str(exc) or type(exc).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's or the machine's, not Petrel's: one line, no traceback.
    Anything else is a bug and keeps its traceback."""
    from .config.errors import ConfigError
    from .control.vici import ViciError
    from .lab.netns import PeerStartError

    return (
        OSError,
        ConfigError,
        ViciError,
        UsageError,
        PeerStartError,
        subprocess.CalledProcessError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("PETREL_DEBUG", "") not in ("", "0")
    if argv[:1] == ["--debug"]:
        debug, argv = True, argv[1:]
    command = "petrel"
    try:
        if argv and argv[0] == "decode":
            return _cmd_decode(argparse.Namespace(), argv[1:])
        if argv and argv[0] == "pki":
            from . import pki_cli

            command = "petrel pki"
            return pki_cli.run(argv[1:])
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        command = f"petrel {args.command}"
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug or not isinstance(exc, _user_errors()):
            raise
        print(f"{command}: {describe_error(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
