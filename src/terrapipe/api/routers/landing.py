"""The landing page and the conformance declaration (OGC API – Common)."""

from __future__ import annotations

import html

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

router = APIRouter(tags=["capabilities"])

PROCESSES = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"
FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
CONFORMANCE = [
    f"{PROCESSES}/core",
    f"{PROCESSES}/json",
    f"{PROCESSES}/job-list",
    f"{PROCESSES}/dismiss",
    f"{PROCESSES}/ogc-process-description",
    f"{PROCESSES}/oas30",
    f"{FEATURES}/core",
    f"{FEATURES}/geojson",
    f"{FEATURES}/oas30",
]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def wants_html(request: Request, f: str | None) -> bool:
    """HTML for a browser (``Accept: text/html`` before JSON) or ``?f=html``; else JSON."""
    if f is not None:
        return f.lower() == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


@router.get(
    "/",
    operation_id="getLandingPage",
    summary="Landing page (JSON; HTML for a browser or ?f=html)",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def landing(
    request: Request, f: str | None = Query(default=None, pattern="^(json|html)$")
) -> Response:
    page = _landing(base_url(request))
    if wants_html(request, f):
        items = "".join(
            f"<li><a href='{html.escape(link['href'])}'>{html.escape(link['title'])}</a> "
            f"<small>({html.escape(link['rel'])})</small></li>"
            for link in page["links"]
        )
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>terrapipe</title></head>"
            f"<body><h1>{html.escape(page['title'])}</h1><p>{html.escape(page['description'])}"
            f"</p><ul>{items}</ul></body></html>"
        )
    return JSONResponse(page)


def _landing(base: str) -> dict:
    ogc = "http://www.opengis.net/def/rel/ogc/1.0"
    return {
        "title": "terrapipe",
        "description": "Geospatial workflows as OGC API – Processes; published layers as "
        "OGC API – Features.",
        "links": [
            {"href": f"{base}/", "rel": "self", "type": "application/json", "title": "this page"},
            {
                "href": f"{base}/openapi.json",
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "the API definition",
            },
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "docs"},
            {
                "href": f"{base}/conformance",
                "rel": "conformance",
                "type": "application/json",
                "title": "conformance classes",
            },
            {
                "href": f"{base}/conformance",
                "rel": f"{ogc}/conformance",
                "type": "application/json",
                "title": "conformance classes",
            },
            {
                "href": f"{base}/collections",
                "rel": "data",
                "type": "application/json",
                "title": "published layers",
            },
            {
                "href": f"{base}/processes",
                "rel": f"{ogc}/processes",
                "type": "application/json",
                "title": "processes",
            },
            {
                "href": f"{base}/jobs",
                "rel": f"{ogc}/job-list",
                "type": "application/json",
                "title": "jobs",
            },
        ],
    }


@router.get("/conformance", operation_id="getConformanceClasses", summary="Conformance")
def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}
