"""Parsing untrusted XML: no DTD, no entities, no network, UTF-8 only, bounded by the caller.

:func:`parse_untrusted` refuses a document that declares a DTD or an entity before lxml sees it
(defusedxml's stance: nothing legitimate that fedgate reads needs one), parses with entity
resolution, DTD loading and the network off, and checks again afterwards. The caller bounds the
size before calling. (The SAML plugin and the agent keep parsers of their own with the same
settings.)

lxml (about 5 MiB resident) is imported by the first call, not with this module: the proxy parses
XML only for DeleteObjects, and a server that never sees one never pays for it (see
:mod:`gateway.requires`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml import etree

__all__ = ["UnsafeXML", "parse_untrusted"]


class UnsafeXML(ValueError):
    """The document is not well-formed UTF-8 XML, or declares a DTD or entities."""


def _parser() -> etree.XMLParser:
    from lxml import etree

    # The encoding is forced: a declaration naming UTF-7 or UTF-16 must not hide markup from the
    # byte check below.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        encoding="utf-8",
    )


def parse_untrusted(document: bytes) -> etree._Element:
    """The root element of ``document``; :class:`UnsafeXML` when it is malformed or declares a DTD."""
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document or b"\x00" in document:
        raise UnsafeXML("DTDs, entities and NUL bytes are not allowed")
    from lxml import etree

    try:
        root = etree.fromstring(document, _parser())
    except (etree.XMLSyntaxError, ValueError):
        raise UnsafeXML("not well-formed XML") from None
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or next(root.iter(etree.Entity), None):
        raise UnsafeXML("DTDs and entities are not allowed")
    return root
