"""Open the jobbench site around every request, commit it when the response is not an error."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

import jobbench


class JobbenchSiteMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with jobbench.site_context(settings.JOBBENCH_SITE, bench_path=settings.JOBBENCH_BENCH):
            response = self.get_response(request)
            # Django turns a view's exception into a 500 response before it gets here: commit
            # only below 500; leaving the block without committing rolls back, and with it
            # every enqueue_after_commit job of the request.
            if response.status_code < 500:
                jobbench.db.commit()
            return response
