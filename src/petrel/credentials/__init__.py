"""petrel.credentials: what IKE authenticators need besides the protocol.

- :mod:`.identities`: identity text with distinguished names, strongSwan's match levels,
  "does this certificate confirm identity X".
- :mod:`.constraints`: swanctl ``auth`` strings (``pubkey``, ``rsa-2048-sha256``,
  ``ike:rsa/pss-sha256``, ``psk``, ``null``) and the check of a finished authentication
  against them, as strongSwan's auth_cfg does.
- :mod:`.store`: the credential store (CAs, certificates, keys, CRLs, raw public keys,
  shared secrets) and its queries; :mod:`.folders` fills it from swanctl's folders.
- :mod:`.authenticate`: the two calls an IKE_AUTH authenticator makes: sign our AUTH, and
  verify a peer's AUTH with its certificates against a remote identity and constraint.

Only :mod:`petrel.crypto` touches the cryptography library; this package works on its values.
"""
