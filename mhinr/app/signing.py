"""Signed render URLs: with INR_URL_SIGNING_KEY set, /render and /jobs/{id}/render answer
only URLs whose `sig` is the HMAC-SHA256 of the rest of the URL under that key, so a public
cache or CDN can serve renders without letting anyone ask for other sizes or jobs. An
optional `expires` (Unix seconds), inside what is signed, bounds a URL's life.

The signed text is the path, "?", and the query parameters other than `sig` sorted by name
and URL-encoded: the order a client writes them in does not matter."""

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode, urlsplit


def canonical(path: str, params: list[tuple[str, str]]) -> str:
    return path + "?" + urlencode(sorted((k, v) for k, v in params if k != "sig"))


def signature(key: str, path: str, params: list[tuple[str, str]]) -> str:
    mac = hmac.new(key.encode(), canonical(path, params).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def sign_url(key: str, url: str, expires_in: float | None = None) -> str:
    """`url` (a path with its query, e.g. "/render?job=…&size=512") with `sig` added (and
    `expires`, `expires_in` seconds from now)."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "sig"]
    if expires_in is not None:
        params = [(k, v) for k, v in params if k != "expires"]
        params.append(("expires", str(int(time.time() + expires_in))))
    params.append(("sig", signature(key, parts.path, params)))
    return parts.path + "?" + urlencode(params)


def check(key: str, path: str, params: list[tuple[str, str]]) -> str | None:
    """None if the URL is signed and not expired, else why not."""
    given = [v for k, v in params if k == "sig"]
    if len(given) != 1:
        return "this server serves renders only from signed URLs: sig is missing"
    if not hmac.compare_digest(given[0], signature(key, path, params)):
        return "the URL's signature does not match (sig)"
    expires = [v for k, v in params if k == "expires"]
    if expires:
        try:
            if float(expires[0]) < time.time():
                return "the signed URL has expired"
        except ValueError:
            return "expires must be Unix seconds"
    return None
