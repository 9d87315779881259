"""``petrel decode CAPTURE [--ike-keys FILE] [--esp-keys FILE] [--json]``.

Exit status: 0 when every IKE message decoded (and, with keys, verified); 1 when at least one
message was malformed or failed integrity / decryption (each is reported, none aborts the run);
2 for usage errors and unreadable capture or key files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from .capture import CaptureError, Datagram, read_capture, read_hex
from .dissect import Dissector
from .keys import KeyFileError, parse_esp_sa, parse_ikev2_table
from .output import format_json, format_text

EXIT_OK = 0
EXIT_MESSAGE_ERRORS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="petrel decode",
        description="Dissect IKEv2 messages in a pcap/pcapng capture (or hex lines on stdin).",
    )
    parser.add_argument("capture", help="pcap or pcapng file, or '-' for hex lines on stdin")
    parser.add_argument("--ike-keys", metavar="FILE", help="Wireshark ikev2_decryption_table file")
    parser.add_argument("--esp-keys", metavar="FILE", help="Wireshark esp_sa file")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def decode_main(
    argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Run ``petrel decode``; returns the exit status (see module docstring)."""
    out = stdout or sys.stdout
    err = sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    try:
        ike_keys = parse_ikev2_table(_read_text(args.ike_keys)) if args.ike_keys else {}
        esp_keys = parse_esp_sa(_read_text(args.esp_keys)) if args.esp_keys else []
    except OSError as exc:
        print(f"petrel decode: cannot read key file: {exc}", file=err)
        return EXIT_USAGE
    except KeyFileError as exc:
        print(f"petrel decode: bad key file: {exc}", file=err)
        return EXIT_USAGE

    dissector = Dissector(ike_keys, esp_keys)
    status = EXIT_OK
    try:
        datagrams: Iterator[Datagram]
        if args.capture == "-":
            datagrams = read_hex(stdin or sys.stdin)
            status = _emit(dissector, datagrams, args.json, out)
        else:
            with open(args.capture, "rb") as fh:
                status = _emit(dissector, read_capture(fh), args.json, out)
    except BrokenPipeError:  # output closed early (``| head``): stop quietly
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return status
    except OSError as exc:
        print(f"petrel decode: cannot read capture: {exc}", file=err)
        return EXIT_USAGE
    except CaptureError as exc:
        print(f"petrel decode: {args.capture}: {exc}", file=err)
        return EXIT_USAGE
    return status


def _emit(dissector: Dissector, datagrams: Iterator[Datagram], as_json: bool, out: TextIO) -> int:
    status = EXIT_OK
    first = True
    for record in dissector.run(datagrams):
        if record.error:
            status = EXIT_MESSAGE_ERRORS
        if as_json:
            out.write(format_json(record) + "\n")
        else:
            out.write(("" if first else "\n") + format_text(record) + "\n")
        first = False
    return status
