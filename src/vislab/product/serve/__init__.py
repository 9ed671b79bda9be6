"""`vislab serve`: the fashion predictor behind an HTTP API and a web page.

    settings.py   ServeSettings: limits, micro-batching, threads (every `vislab serve` flag)
    limits.py     request body size (counted while streaming), content types, image checks
    batcher.py    micro-batching: concurrent requests collected for a few ms, run as one batch
    schemas.py    the JSON answers (pydantic: they make the OpenAPI page at /docs)
    app.py        create_app(checkpoint, settings): the FastAPI app, its endpoints and the page
    static/       the web page (plain HTML/CSS/JS, served by the app, no CDN)
"""
