"""petrel.esp: sans-I/O ESP data plane (RFC 4303 tunnel mode, RFC 3948 UDP encapsulation).

Import the submodules directly (``petrel.esp.sa``, ``.replay``, ``.udpencap``, ``.packet``,
``.counters``); this package module stays free of imports so that ``petrel.esp.udpencap`` can
be used without loading the crypto layer.
"""
