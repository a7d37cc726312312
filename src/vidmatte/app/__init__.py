"""``vidmatte app``: a local web page for editors: pick the people, preview the matte, download.

decision: the page is plain HTML and JavaScript served by a small Starlette application (with uvicorn),
not Gradio. Gradio is the field's convention, but it brings about thirty direct dependencies (FastAPI,
pydantic, pandas, huggingface-hub, httpx, ...) and its own front-end bundle for widgets this page does
not need, and its component model fits poorly what editors asked for: click a person on the first frame,
keep a job that outlives a page reload, stream a large upload to disk with a size limit, a live side-by-
side preview. Starlette (the base of FastAPI, well kept; with uvicorn four small dependencies) does each
of these in a few lines, and the page loads no script from the network, so it works offline. ``pip
install vidmatte[app]`` installs it.

Layout: :mod:`.server` (routes), :mod:`.sessions` (per-session folders), :mod:`.workers` (a process per
task) running :mod:`.worker` (first-frame people, matting jobs), :mod:`.people` and :mod:`.people_view`
(the first frame's people), :mod:`.correction` (a painted first-frame mask), :mod:`.job_spec`,
:mod:`.progress`, :mod:`.side_by_side` (the preview), :mod:`.downloads`, and ``static/`` (the page).
"""
