"""Trial results as a table, every cell cited: GET /api/trials (JSON or CSV)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from rag.api.common import ERRORS, NOT_FOUND, ChatKey, StateDep, json_errors
from rag.trials import to_csv

router = APIRouter()


@router.get(
    "/api/trials",
    tags=["trials"],
    response_class=Response,
    responses={
        200: {
            "description": "One row per trial; every cell is an exact span with its view_url",
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **json_errors(ERRORS | NOT_FOUND),
    },
    summary="The trials the indexed documents report, every cell cited",
)
def trials(
    state: StateDep,
    _: ChatKey,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    doc: Annotated[list[str] | None, Query(description="Only these document ids.")] = None,
) -> Response:
    rows = state.trial_rows(doc)
    if fmt == "csv":
        return Response(
            to_csv(rows).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="trials.csv"'},
        )
    return Response(json.dumps(rows, ensure_ascii=False), media_type="application/json")
