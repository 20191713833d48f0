"""Which URLs Sinergi may reach over plain http: only a server on this machine.

One rule for every URL Sinergi fetches from or sends to (`sinergi sync --url`, an external
issuer's `jwks_url`): what crosses the network in the clear, anyone on the path reads, or
answers in the server's place.
"""

from __future__ import annotations

import urllib.parse

from domain.addresses import is_loopback


def cleartext_refusal(url: str, exposed: str) -> str | None:
    """Why `url` may not be used, or None: it is https, or plain http to this machine (a
    development server). `exposed` says what plain http would expose, for the refusal, which
    names the URL without the user and password it may carry: the refusal is printed and
    logged."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return None
    if parts.scheme != "http":
        return f"{without_userinfo(url)}: not an http(s) URL"
    host = parts.hostname or ""
    if host == "localhost" or is_loopback(host):  # another name may resolve anywhere
        return None
    return (
        f"{without_userinfo(url)}: plain http {exposed}; use https "
        "(http only to this machine: localhost, 127.0.0.0/8, ::1, ::ffff:127.x)"
    )


def without_userinfo(url: str) -> str:
    """`url` without the user and password it may carry, for printing it (a refusal, a log line)
    or storing it where others read it; Sinergi sends neither (urllib takes them for part of
    the host)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url  # as given: urlsplit and geturl would respell it (the scheme's case, a "?")
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
