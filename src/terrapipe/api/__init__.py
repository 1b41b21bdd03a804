"""The HTTP service (``terrapipe serve``): :func:`terrapipe.api.app.create_app` builds it.

Nothing is imported here, so the service's tables (:mod:`terrapipe.api.models`) load
without FastAPI.
"""
