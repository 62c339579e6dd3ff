"""Enqueue a job from a view and show its status."""

from __future__ import annotations

import json
import uuid

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import jobbench

from .tasks import add


@csrf_exempt  # an API endpoint for the example; keep CSRF on for browser forms
@require_POST
def enqueue_add(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    x, y = int(body["x"]), int(body["y"])
    if body.get("after_commit"):
        # Enqueued when the middleware commits this request's jobbench transaction. For data in
        # Django's own database use transaction.on_commit(lambda: jobbench.enqueue(...)).
        job_id = uuid.uuid4().hex
        jobbench.enqueue(add, job_id=job_id, enqueue_after_commit=True, x=x, y=y)
        return JsonResponse({"job_id": job_id, "status": "enqueued after commit"}, status=202)
    job = jobbench.enqueue(add, queue="short", track_job=True, x=x, y=y)
    return JsonResponse({"job_id": job.id, "status": job.status}, status=202)


@require_GET
def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    job = jobbench.get_job(job_id)
    if job is None:
        raise Http404(f"no job {job_id!r}")
    return JsonResponse(
        {
            "job_id": job.id,
            "status": job.status,
            "result": job.result,
            "progress": job.progress,
            "error": job.exc_info.strip().splitlines()[-1] if job.exc_info else None,
        }
    )
