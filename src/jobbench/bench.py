"""The bench: a folder of configuration, sites and apps.

::

    DIR/
      sites/common_site_config.json   bench-wide config
      sites/apps.txt                  apps available on this bench, one a line
      sites/<site>/site_config.json   per-site config (db_url, installed_apps, overrides)
      apps/                           optional: app packages placed here are importable
      logs/
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from jobbench import config
from jobbench.errors import BenchNotFoundError, ConfigError, SiteNotFoundError
from jobbench.utils import _dict, printable

COMMON_CONFIG = "common_site_config.json"
SITE_CONFIG = "site_config.json"
SITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")  # \Z: "$" lets a "\n" end it
BUILTIN_APP = "jobbench"


@dataclass(frozen=True)
class Bench:
    """A bench folder; every method reads the files afresh so edits take effect at once.

    ``config_max_age`` > 0 (a worker's executor: 1 s) lets ``merged_config`` reuse a site's
    merged config for that many seconds instead of checking its two files and the site folder
    (three ``stat`` calls) for every job; docs/configuration.md says so."""

    path: Path
    config_max_age: float = field(default=0.0, compare=False)

    @cached_property
    def _config_memo(self) -> dict[str, tuple[float, _dict]]:
        return {}  # site -> (monotonic time it was read, merged config)

    # Paths are computed once per bench: a worker builds them for every job otherwise.
    @cached_property
    def sites_path(self) -> Path:
        return self.path / "sites"

    @cached_property
    def common_config_path(self) -> Path:
        return self.sites_path / COMMON_CONFIG

    @cached_property
    def apps_txt(self) -> Path:
        return self.sites_path / "apps.txt"

    def site_path(self, site: str) -> Path:
        return _site_path(self.sites_path, site)

    def site_config_path(self, site: str) -> Path:
        return _site_config_path(self.sites_path, site)

    def common_config(self) -> _dict:
        return _dict(config.read_json(self.common_config_path))

    def site_exists(self, site: str) -> bool:
        return bool(SITE_NAME_RE.fullmatch(site)) and self.site_config_path(site).is_file()

    def require_site(self, site: str) -> None:
        if not self.site_exists(site):
            known = ", ".join(self.list_sites()) or "none"
            raise SiteNotFoundError(  # printable: "s1\n" must not read as "s1 "
                f"site '{printable(site)}' does not exist in {self.sites_path} (sites: {known}); "
                "create it with 'jobbench new-site NAME'"
            )

    def site_config(self, site: str) -> dict[str, Any]:
        """The site's own file, validated (not merged)."""
        self.require_site(site)
        return config.read_json(self.site_config_path(site))

    def merged_config(self, site: str) -> _dict:
        """Common config overlaid with the site's config, plus derived defaults.

        A fresh top-level dict each call; nested values (lists, dicts) are shared with the
        config cache, so treat them as read-only."""
        if self.config_max_age <= 0:
            return self._merged_config(site)
        now = time.monotonic()
        memo = self._config_memo.get(site)
        if memo is None or now - memo[0] >= self.config_max_age:
            memo = self._config_memo[site] = (now, self._merged_config(site))
        return _dict(memo[1])

    def _merged_config(self, site: str) -> _dict:
        self.require_site(site)
        conf = config.merge(
            config.read_json_shared(self.common_config_path),
            config.read_json_shared(self.site_config_path(site)),
        )
        conf.setdefault("db_url", default_db_url(self.path, site))
        conf.setdefault("installed_apps", [])
        return conf

    def list_sites(self) -> list[str]:
        if not self.sites_path.is_dir():
            return []
        return sorted(
            p.name for p in self.sites_path.iterdir() if p.is_dir() and self.site_exists(p.name)
        )

    def available_apps(self) -> list[str]:
        try:
            lines = self.apps_txt.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [line.strip() for line in lines if line.strip()]

    def add_available_app(self, app: str) -> None:
        apps = self.available_apps()
        if app not in apps:
            self.apps_txt.write_text("\n".join([*apps, app]) + "\n", encoding="utf-8")

    def remove_available_app(self, app: str) -> None:
        apps = self.available_apps()
        if app in apps:
            rest = [a for a in apps if a != app]
            self.apps_txt.write_text("".join(f"{a}\n" for a in rest), encoding="utf-8")

    def update_site_config(self, site: str, values: dict[str, Any]) -> None:
        """Set keys in the site's file; values are validated before anything is written."""
        current = self.site_config(site)
        current.update(values)
        config.validate(current, str(self.site_config_path(site)))
        config.write_json(self.site_config_path(site), current)

    def update_common_config(self, values: dict[str, Any]) -> None:
        current = dict(self.common_config())
        current.update(values)
        config.validate(current, str(self.common_config_path))
        config.write_json(self.common_config_path, current)

    def add_apps_dir_to_path(self) -> None:
        """Make ``<bench>/apps`` importable, the way bench's apps/ folder is for Frappe."""
        apps_dir = self._apps_dir
        if apps_dir not in sys.path and os.path.isdir(apps_dir):
            sys.path.insert(0, apps_dir)

    @cached_property
    def _apps_dir(self) -> str:
        return str(self.path / "apps")


@lru_cache(maxsize=4096)
def _site_path(sites_path: Path, site: str) -> Path:
    return sites_path / site


@lru_cache(maxsize=4096)
def _site_config_path(sites_path: Path, site: str) -> Path:
    return sites_path / site / SITE_CONFIG


@lru_cache(maxsize=4096)
def default_db_url(bench_path: Path, site: str) -> str:
    return f"sqlite:///{bench_path / 'sites' / site / 'site.sqlite3'}"


def is_bench(path: Path) -> bool:
    return (path / "sites" / COMMON_CONFIG).is_file()


_benches: dict[str, Bench] = {}  # path as given -> resolved bench (resolve() is slow-ish)


def find_bench(explicit: str | os.PathLike[str] | None = None) -> Bench:
    """--bench, else $JOBBENCH_BENCH, else the first parent of the cwd that is a bench."""
    given = explicit or os.environ.get("JOBBENCH_BENCH")
    if given:
        known = _benches.get(os.fspath(given))
        if known is not None and is_bench(known.path):
            return known
        path = Path(given).expanduser().resolve()
        if not is_bench(path):
            raise BenchNotFoundError(
                f"{path} is not a bench (no sites/{COMMON_CONFIG}); create one with "
                "'jobbench init DIR'"
            )
        _benches[os.fspath(given)] = Bench(path)
        return _benches[os.fspath(given)]
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if is_bench(candidate):
            return Bench(candidate)
    raise BenchNotFoundError(
        f"no bench found at or above {here}; pass --bench DIR, set $JOBBENCH_BENCH, "
        "or create one with 'jobbench init DIR'"
    )


def init_bench(path: str | os.PathLike[str]) -> Bench:
    """Create a bench folder with a fresh ``secret_key`` and ``bench_id``."""
    root = Path(path).expanduser().resolve()
    if is_bench(root):
        raise ConfigError(f"{root} is already a bench; use it, or choose another folder")
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        raise ConfigError(f"{root} is not empty; choose a new or empty folder")
    for sub in ("sites", "logs", "apps"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    bench = Bench(root)
    bench.apps_txt.write_text("", encoding="utf-8")
    config.write_json(
        bench.common_config_path,
        {"secret_key": secrets.token_hex(32), "bench_id": secrets.token_hex(4)},
    )
    return bench
