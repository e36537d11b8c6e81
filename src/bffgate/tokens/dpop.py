"""DPoP (RFC 9449) on upstream calls: a user token the IdP bound to the session's key goes as
``Authorization: DPoP <token>`` with a fresh proof (htm, htu, ath, iat, jti) per request."""

from __future__ import annotations

from dataclasses import dataclass

from bffgate.oidc.dpop import DpopKey, DpopProver
from bffgate.session.model import Tokens
from bffgate.tokens.credential import RouteCredential


@dataclass(frozen=True, repr=False)
class ProofSigner:
    """A session's key with the prover (clock, the upstreams' nonces) that signs for it."""

    key: DpopKey
    prover: DpopProver

    def headers(self, token: str, method: str, url: str) -> list[tuple[bytes, bytes]]:
        proof = self.prover.proof(self.key, method, url, access_token=token)
        return [(b"authorization", b"DPoP " + token.encode("latin-1")),
                (b"dpop", proof.encode("ascii"))]


def user_credential(access_token: str, tokens: Tokens,
                    prover: DpopProver | None) -> RouteCredential:
    """The user's token as the IdP issued it: DPoP-bound (with the session's key) or bearer
    (no key, or the IdP answered Bearer to a proved grant)."""
    if tokens.dpop_key is None or tokens.token_type != "DPoP" or prover is None:
        return RouteCredential("Bearer", access_token)
    return RouteCredential("DPoP", access_token,
                           ProofSigner(DpopKey.from_secret(tokens.dpop_key), prover))


def upstream_answered(credential: RouteCredential | None, url: str,
                      headers: list[tuple[bytes, bytes]]) -> None:
    """Keep the nonce an upstream gave with its answer (RFC 9449 9: ``DPoP-Nonce``), so the
    next proof to that upstream carries it. The request itself is not sent again."""
    if credential is None or not isinstance(credential.proof_key, ProofSigner):
        return
    for name, value in headers:
        if name.lower() == b"dpop-nonce":
            credential.proof_key.prover.nonces.remember(url, value.decode("latin-1"))
