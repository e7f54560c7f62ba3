"""The dashboard, the randomisation and the downloads: the trial team's pages."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at definition
# time, and `site.require(...)` inside them must be a value.

from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from policetrial.web.accounts import User
from policetrial.web.site import Site, wants_json

__all__ = ["DOWNLOADS", "add_trial_routes"]

DOWNLOADS = {
    "results.json": "application/json",
    "report.html": "text/html",
    "report.pdf": "application/pdf",
}


def add_trial_routes(app: FastAPI, site: Site) -> None:
    # ---------------------------------------------------------------- dashboard

    @app.get("/", summary="Dashboard: recruitment, training, responses, data, audit")
    def dashboard(
        request: Request,
        user: Annotated[User, Depends(site.require("admin", "manager", "statistician"))],
    ) -> Response:
        from policetrial.web.dashboard import dashboard_context
        from policetrial.web.figures import dashboard_figures

        context = dashboard_context(site.workspace, by_arm=user.role == "statistician")
        if wants_json(request):  # the numbers only; the figures are drawn from them
            return site.render(request, "dashboard.html", context, user=user)
        figures = dashboard_figures(context)
        return site.render(
            request, "dashboard.html", {"d": context, "figures": figures}, user=user, data=context
        )

    # ---------------------------------------------------------------- randomisation

    @app.get("/randomisation", summary="The sealed allocation record (statistician)")
    def randomisation(
        request: Request, user: Annotated[User, Depends(site.require("statistician"))]
    ) -> Response:
        from policetrial.randomise.sealed import current_allocation
        from policetrial.records.roster import load_stations

        allocation = current_allocation(site.workspace)
        record = None if allocation is None else allocation.to_dict()
        stations = load_stations(site.workspace)
        names = dict(zip(stations["station_id"], stations["station_name"], strict=True))
        rows = (
            []
            if allocation is None
            else [
                {"station_id": s, "station": names.get(s, s), "arm": arm}
                for s, arm in sorted(allocation.arms.items(), key=lambda kv: (kv[1], kv[0]))
            ]
        )
        plan = site.workspace.protocol.randomisation
        context = {
            "record": record,
            "rows": rows,
            "stations": len(stations),
            "plan": {"method": plan.method, "seed": plan.seed},
        }
        return site.render(request, "randomisation.html", context, user=user)

    @app.post("/randomisation", summary="Randomise once (statistician)", dependencies=[site.csrf])
    def randomise(
        request: Request,
        user: Annotated[User, Depends(site.require("statistician"))],
        confirm: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        from policetrial.randomise.sealed import randomise_workspace

        if confirm != "yes":
            raise HTTPException(400, "tick the box to confirm: randomisation happens once")
        randomise_workspace(site.workspace, actor=user.username)
        return RedirectResponse("/randomisation", status_code=303)

    # ---------------------------------------------------------------- downloads

    @app.get("/downloads", summary="Results and report files (statistician)")
    def downloads(
        request: Request, user: Annotated[User, Depends(site.require("statistician"))]
    ) -> Response:
        out = site.workspace.out_dir
        files = [
            {"name": name, "bytes": (out / name).stat().st_size}
            for name in DOWNLOADS
            if (out / name).is_file()
        ]
        return site.render(request, "downloads.html", {"files": files}, user=user)

    @app.get("/downloads/{name}", summary="Download one file (statistician)")
    def download(
        name: str, user: Annotated[User, Depends(site.require("statistician"))]
    ) -> Response:
        path = site.workspace.out_dir / name
        if name not in DOWNLOADS or not path.is_file():
            raise HTTPException(404, f"no file {name!r}; run the analysis and report first")
        return FileResponse(path, media_type=DOWNLOADS[name], filename=name)
