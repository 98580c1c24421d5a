"""Locust people for bench/load.py: each signs in with a session cookie and reads mail.

LOAD_PEOPLE names a JSON file written by bench/load.py: a list of {"cookie", "csrf", "folder", "messages",
"words"}; LOAD_HOSTS is a comma-separated list of web base URLs (people are spread over them);
LOAD_WAIT is "min,max" think time in seconds ("0,0" for a capacity run). Requests carry the
headers the page's htmx sends (a folder click swaps the folders and list, a message click the
message pane, a search the list), so the server renders what a browser would ask for.
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import FastHttpUser, between, constant, task

PEOPLE = json.loads(open(os.environ["LOAD_PEOPLE"]).read())
HOSTS = os.environ["LOAD_HOSTS"].split(",")
_low, _high = (float(x) for x in os.environ.get("LOAD_WAIT", "1,3").split(","))
_next = itertools.count()


class Person(FastHttpUser):
    host = HOSTS[0]
    wait_time = between(_low, _high) if _high > 0 else constant(0)
    connection_timeout = 10.0
    network_timeout = 10.0

    def on_start(self) -> None:
        n = next(_next)
        self.person = PEOPLE[n % len(PEOPLE)]
        self.base = HOSTS[n % len(HOSTS)].rstrip("/")
        # A browser sends back the CSRF cookie its first page set (else every page mints a new one).
        cookie = f"sessionid={self.person['cookie']}; csrftoken={self.person['csrf']}"
        self.headers = {"Cookie": cookie, "HX-Request": "true"}

    def get(self, path: str, name: str, target: str) -> None:
        """GET PATH as the page's htmx does: HX-Target names the pane the answer replaces."""
        headers = {**self.headers, "HX-Target": target}
        with self.client.get(self.base + path, headers=headers, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            elif "login" in (r.url or ""):
                r.failure("redirected to the login page")

    @task(5)
    def list_folder(self) -> None:
        self.get(f"/mail/folder/{self.person['folder']}/", "list folder", "mail")

    @task(3)
    def open_message(self) -> None:
        self.get(f"/mail/message/{random.choice(self.person['messages'])}/", "open message", "message-pane")

    @task(2)
    def search(self) -> None:
        self.get(f"/mail/search/?q={random.choice(self.person['words'])}", "search", "list-pane")
