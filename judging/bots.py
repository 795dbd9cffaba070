"""Simulated crowd judges that take part in a study the way a person does: over HTTP through the
study pages (entry by a Prolific link, consent, quiz, practice, waiting, survey, completion), the
person's own websocket (the waiting room's notices) and the debate's websocket (the judge's
feedback), against a running DebateLab server. For
tests and for a researcher's dry run (`manage.py run_bots`). Bots know the quiz answers (read from
the experiment file) and judge correctly with a set probability. Some may drop out once seated, as a
person closing the tab does, so the study's replacement of absent judges is exercised too."""

import json
import random
import re
import statistics
import threading
import time
from contextlib import ExitStack
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookiejar import CookieJar
from urllib.error import HTTPError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import connect

STATUS = re.compile(r'data-study-status="([a-z_]+)"')
DEBATE_LINK = re.compile(r'href="/debates/(\d+)/"[^>]*data-debate-link')
CODE = re.compile(r"data-completion-code>([^<]+)<")
FINISHED = ("completed", "returned", "timed_out", "screened_out")
NO_ACCESS = 4403  # the debate socket's close code for someone who may not see the debate
QUIET_CHECK_SECONDS = 20  # the waiting page asks at least this often when no notice comes (study-wait.js)


class _KeepRedirects(HTTPRedirectHandler):
    """Redirects inside the server are followed; the completion redirect to Prolific is recorded, not fetched."""

    def __init__(self, base_host):
        self.base_host = base_host
        self.external = None

    def redirect_request(self, request, fp, code, message, headers, new_url):
        if urlsplit(new_url).netloc not in ("", self.base_host):
            self.external = new_url
            return None
        return super().redirect_request(request, fp, code, message, headers, new_url)


class BotClient:
    """A browser without a screen: cookies, CSRF tokens and redirects as a browser handles them."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")
        self.cookies = CookieJar()
        self.redirects = _KeepRedirects(urlsplit(self.base_url).netloc)
        self.opener = build_opener(HTTPCookieProcessor(self.cookies), self.redirects)
        self.requests = 0

    def cookie(self, name):
        return next((c.value for c in self.cookies if c.name == name), None)

    def get(self, path, params=None) -> str:
        url = urljoin(self.base_url, path) + (f"?{urlencode(params)}" if params else "")
        return self._open(Request(url))

    def post(self, path, form) -> str:
        data = urlencode(dict(form, csrfmiddlewaretoken=self.cookie("csrftoken") or "")).encode()
        request = Request(
            urljoin(self.base_url, path),
            data=data,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": self.base_url + "/"},
        )
        return self._open(request)

    def _open(self, request) -> str:
        self.requests += 1
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.read().decode()
        except HTTPError as error:
            if error.code in (301, 302, 303) and self.redirects.external:
                return ""
            body = error.read().decode(errors="replace")
            if error.code == 400:  # a refused form comes back as a page, as in a browser
                return body
            raise RuntimeError(f"{request.get_method()} {request.full_url}: HTTP {error.code}: {body[:300]}") from None


@dataclass
class BotResult:
    pid: str
    status: str = ""
    code: str = ""
    redirect: str = ""
    entered_at: float = 0.0
    seated_at: float | None = None
    finished_at: float | None = None
    requests: int = 0
    error: str = ""
    reconnects: int = 0
    debate: int | None = None  # the debate it was seated in
    dropped_debate: int | None = None  # the debate this bot abandoned once seated as its judge
    dropped_at: float | None = None
    notices: int = 0  # notices received on the person's own socket
    notice_socket_failures: int = 0  # times it could not be opened (the bot polled instead)


class DropoutPlan:
    """Which seatings end in a dropout: `count` of the first `among` seatings (chosen with the run's
    seed). Those seatings always come, one per debate, so every planned dropout happens; later
    seatings (of freed seats) are kept, so the run ends."""

    def __init__(self, count, among, rng):
        self.chosen = set(rng.sample(range(among), min(count, among)))
        self.seatings = 0
        self.lock = threading.Lock()

    def next_seating_drops_out(self) -> bool:
        with self.lock:
            index = self.seatings
            self.seatings += 1
        return index in self.chosen


class Bot:
    def __init__(
        self, base_url, experiment_id, study, pid, rng, accuracy=0.8, poll_seconds=0.5, timeout=600, dropouts=None
    ):
        self.client = BotClient(base_url)
        self.experiment_id = experiment_id
        self.study = study
        self.rng = rng
        self.accuracy = accuracy
        self.poll_seconds = poll_seconds
        self.deadline = time.monotonic() + timeout
        self.result = BotResult(pid)
        self.page_path = f"/study/{experiment_id}/"
        self.dropouts = dropouts
        self.notices = None  # the person's own socket (/ws/me/), open while the bot waits to judge
        self.notices_context: ExitStack | None = None

    def run(self) -> BotResult:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - a bot reports what stopped it and the run goes on
            self.result.error = f"{type(error).__name__}: {error}"
        finally:
            self._close_notices()
        self.result.requests = self.client.requests
        return self.result

    def _run(self):
        self.result.entered_at = time.monotonic()
        page = self.client.get(
            self.page_path,
            {"PROLIFIC_PID": self.result.pid, "STUDY_ID": "BOTSTUDY", "SESSION_ID": f"S{self.result.pid}"},
        )
        while time.monotonic() < self.deadline:
            status = STATUS.search(page).group(1)
            self.result.status = status
            if status in FINISHED:
                self.result.finished_at = time.monotonic()
                code = CODE.search(page)
                self.result.code = code.group(1) if code else ""
                self.result.redirect = self._completion_redirect(page)
                return
            page = self._step(status, page)
            if page is None:  # dropped out: the bot stops as a closed tab does
                return
        raise TimeoutError(f"still {self.result.status} when the bot's time ran out")

    def _step(self, status, page) -> str | None:
        base = self.page_path
        if status == "allocated":
            return self.client.post(base + "consent/", {"consent": "agree"})
        if status == "consented" and "data-practice" in page:
            practice = self.study["practice"]
            return self.client.post(base + "practice/", self._percents(len(practice["answers"]), practice["correct"]))
        if status == "consented":
            return self.client.post(base + "quiz/", {f"q{i}": q["answer"] for i, q in enumerate(self.study["quiz"])})
        if status in ("qualified", "waiting"):
            self._wait_in_the_waiting_room()
            return self.client.get(base)
        if "data-survey" in page:
            return self.client.post(base + "survey/", self._survey_answers())
        link = DEBATE_LINK.search(page)
        if link is None:
            time.sleep(self.poll_seconds)
            return self.client.get(base)
        if self.result.seated_at is None:
            self.result.seated_at = time.monotonic()
            self.result.debate = int(link.group(1))
            if self.dropouts is not None and self.dropouts.next_seating_drops_out():
                self._abandon(int(link.group(1)))
                return None
        return self._judge(int(link.group(1)))

    def _wait_in_the_waiting_room(self) -> None:
        """As the waiting page's script does (static/js/study-wait.js): listens on the person's own
        socket and asks the server where it stands when a notice says the room changed, when the
        study's wait limit is due, and every 20 s in silence. Returns once the bot is moved on. With
        no socket it polls, as the page does while its socket is down."""
        if not self._open_notices():
            time.sleep(self.poll_seconds * (0.5 + self.rng.random()))
            return
        check = self._check()  # after the socket is open, so no notice falls in between
        due = self._next_check_at(check)
        while check["status"] in ("qualified", "waiting") and time.monotonic() < self.deadline:
            notice = self._next_notice(until=due)
            if notice is False:  # the socket closed: back to the page, which polls
                return
            if notice is not None and notice.get("kind") == "room" and not notice.get("open_debates"):
                continue  # the room's count changed; nothing to take
            check = self._check()
            due = self._next_check_at(check)

    def _check(self) -> dict:
        return json.loads(self.client.get(self.page_path + "status.json"))

    @staticmethod
    def _next_check_at(check) -> float:
        seconds = check.get("check_in_seconds")
        return time.monotonic() + (QUIET_CHECK_SECONDS if seconds is None else min(QUIET_CHECK_SECONDS, seconds + 1))

    def _open_notices(self) -> bool:
        if self.notices is not None:
            return True
        opened = ExitStack()  # the socket stays open across steps, so its context is entered by hand
        try:
            socket = opened.enter_context(self._socket("/ws/me/"))
            if json.loads(socket.recv(timeout=30)).get("type") != "hello":
                raise ValueError("the server did not say hello")
        except (InvalidMessage, ConnectionClosed, OSError, TimeoutError, ValueError):
            opened.close()
            self.result.notice_socket_failures += 1
            return False
        self.notices, self.notices_context = socket, opened
        return True

    def _next_notice(self, until) -> dict | None | bool:
        """The next notice; None when `until` passes first; False when the socket has closed."""
        try:
            while (left := until - time.monotonic()) > 0:
                frame = json.loads(self.notices.recv(timeout=left))
                if frame.get("type") == "notice":
                    self.result.notices += 1
                    return frame
        except TimeoutError:
            return None
        except (ConnectionClosed, OSError, ValueError):
            self._close_notices()
            return False
        return None

    def _close_notices(self) -> None:
        if self.notices is not None:
            self.notices_context.close()
            self.notices = self.notices_context = None

    def _abandon(self, debate_id) -> None:
        """Opens the debate's room (page and websocket), then closes it and never comes back: no
        feedback, no verdict, no survey."""
        self.client.get(f"/debates/{debate_id}/")
        with self._room_socket(debate_id) as socket:
            socket.recv(timeout=30)
        self.result.dropped_debate = debate_id
        self.result.dropped_at = time.monotonic()

    def _judge(self, debate_id) -> str:
        """Reads the debate in its room (page and websocket), gives feedback when it is the judge's
        turn, then the verdict on the verdict page, which keeps the room's socket open."""
        self.client.get(f"/debates/{debate_id}/")
        state = self._follow_debate(debate_id)
        if state is None:  # no longer this debate's judge (timed out): the study page says what now
            return self.client.get(self.page_path)
        correct_shown = self._guess_correct(state)
        form = self._percents(len(state["question"]["answers"]), correct_shown)
        form.update(
            reason="The better-supported answer, as far as I could tell.",
            seconds_spent="30",
            hidden_seconds="0",
            client_id=f"bot-{self.result.pid}-{debate_id}",
        )
        with ExitStack() as verdict_page:
            try:  # as the verdict page does (stay-present.js): the judge stays present while deciding
                verdict_page.enter_context(self._room_socket(debate_id))
            except (InvalidMessage, ConnectionClosed, OSError, TimeoutError):
                self.result.reconnects += 1
            self.client.get(f"/debates/{debate_id}/verdict/")
            self.client.post(f"/debates/{debate_id}/verdict/", form)
        return self.client.get(self.page_path)

    def _follow_debate(self, debate_id) -> dict | None:
        """As the room's script does, a dropped or refused connection is opened again after a pause,
        except one closed with 4403 (this person may not see the debate): then None."""
        for attempt in range(8):
            try:
                return self._watch(debate_id)
            except (InvalidMessage, ConnectionClosed, OSError) as error:
                if isinstance(error, ConnectionClosed) and error.rcvd is not None and error.rcvd.code == NO_ACCESS:
                    return None
                self.result.reconnects += 1
                if attempt == 7:
                    raise RuntimeError(f"debate {debate_id}: websocket kept failing ({error})") from None
                time.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + self.rng.random()))

    def _room_socket(self, debate_id):
        return self._socket(f"/ws/debates/{debate_id}/")

    def _socket(self, path):
        host = urlsplit(self.client.base_url).netloc
        headers = {"Cookie": f"sessionid={self.client.cookie('sessionid')}"}
        return connect(f"ws://{host}{path}", origin=self.client.base_url, additional_headers=headers, open_timeout=30)

    def _watch(self, debate_id) -> dict:
        with self._room_socket(debate_id) as socket:
            state, sent = None, set()
            while time.monotonic() < self.deadline:
                frame = json.loads(socket.recv(timeout=max(1.0, self.deadline - time.monotonic())))
                if frame["type"] == "state":
                    state = frame
                elif frame["type"] == "event" and state is not None:
                    socket.send(json.dumps({"type": "sync", "after": None}))  # ask for the whole state again
                    continue
                elif frame["type"] == "error":
                    raise RuntimeError(f"debate {debate_id}: {frame}")
                if state is None:
                    continue
                if state["status"] in ("awaiting_verdict", "complete", "abandoned"):
                    return state
                if (
                    state["status"] == "live"
                    and "judge" in (state.get("waiting_for") or [])
                    and state["round"] not in sent
                ):
                    sent.add(state["round"])
                    answers = len(state["question"]["answers"])
                    probabilities = [p / 100 for p in self._percent_values(answers, self.rng.randrange(answers))]
                    socket.send(
                        json.dumps(
                            {
                                "type": "feedback",
                                "probabilities": probabilities,
                                "text": "",
                                "client_id": f"bot-{self.result.pid}-{debate_id}-{state['round']}",
                            }
                        )
                    )
        raise TimeoutError(f"debate {debate_id} did not end in time")

    def _guess_correct(self, state) -> int:
        """Bots cannot read the passage: the runner tells them the right answer with probability `accuracy`."""
        answers = len(state["question"]["answers"])
        truth = state.get("bot_truth")
        if truth is None:
            return self.rng.randrange(answers)
        return (
            truth if self.rng.random() < self.accuracy else self.rng.choice([i for i in range(answers) if i != truth])
        )

    def _percent_values(self, count, favoured) -> list[int]:
        rest = 30 // max(1, count - 1)
        values = [rest] * count
        values[favoured] = 100 - rest * (count - 1)
        return values

    def _percents(self, count, favoured) -> dict:
        return {f"p{i}": str(v) for i, v in enumerate(self._percent_values(count, favoured))}

    def _survey_answers(self) -> dict:
        answers = {}
        for question in self.study["survey"]:
            if question["kind"] == "scale":
                answers[question["id"]] = str(self.rng.randint(1, 5))
            elif question["kind"] == "choice":
                answers[question["id"]] = self.rng.choice(question["options"])
            else:
                answers[question["id"]] = "No comments."
        return answers

    def _completion_redirect(self, page) -> str:
        match = re.search(r'href="(https://app\.prolific\.com/submissions/complete\?cc=[^"]+)"', page)
        return match.group(1) if match else ""


def run_bots(
    base_url,
    experiment_id,
    study,
    judges,
    concurrency=20,
    accuracy=0.8,
    seed=0,
    timeout=600,
    truth_for=None,
    prefix="BOT",
    start_gap=0.0,
    dropouts=0,
    debates=None,
) -> dict:
    """Runs `judges` bots (at most `concurrency` at once) and returns their results and the study's figures.
    truth_for(debate_id) -> shown index of the right answer lets bots be right with `accuracy`.
    `dropouts` of them abandon their debate once seated, chosen among the first seatings (as many
    as there are `debates`, when given)."""
    rng = random.Random(seed)
    lock = threading.Lock()
    among = judges - dropouts if debates is None else min(judges - dropouts, debates)
    plan = DropoutPlan(dropouts, among, random.Random(rng.random())) if dropouts else None
    bots = [
        Bot(
            base_url,
            experiment_id,
            study,
            f"{prefix}{i:05d}",
            random.Random(rng.random()),
            accuracy,
            timeout=timeout,
            dropouts=plan,
        )
        for i in range(judges)
    ]
    if truth_for is not None:
        for bot in bots:
            original = bot._follow_debate

            def follow(debate_id, original=original):
                state = original(debate_id)
                if state is not None:
                    with lock:
                        state["bot_truth"] = truth_for(debate_id)
                return state

            bot._follow_debate = follow
    started = time.monotonic()

    def launch(bot, index):
        time.sleep(start_gap * index)
        return bot.run()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(launch, bots, range(len(bots))))
    return {"results": results, "figures": figures(results, started)}


def figures(results, started) -> dict:
    seated = [r.seated_at - r.entered_at for r in results if r.seated_at]
    finished = [r.finished_at - started for r in results if r.finished_at]
    return {
        "bots": len(results),
        "completed": sum(r.status == "completed" for r in results),
        "dropped_out": sum(r.dropped_debate is not None for r in results),
        "with_code": sum(bool(r.code) for r in results),
        "errors": sum(bool(r.error) for r in results),
        "median_seconds_to_seat": round(statistics.median(seated), 2) if seated else None,
        "time_to_finish_all": round(max(finished), 2) if finished else None,
        "median_seconds_to_refill": _median_refill(results),
        "requests": sum(r.requests for r in results),
        "websocket_reconnects": sum(r.reconnects for r in results),
        "notices": sum(r.notices for r in results),
        "notice_socket_failures": sum(r.notice_socket_failures for r in results),
    }


def _median_refill(results) -> float | None:
    """Median seconds from a bot's dropout to the next judge being seated in the debate it left."""
    seated: dict[int, list[float]] = {}
    for r in results:
        if r.debate is not None and r.dropped_debate is None:
            seated.setdefault(r.debate, []).append(r.seated_at)
    waits = [
        min(t for t in seated[r.dropped_debate] if t >= r.dropped_at) - r.dropped_at
        for r in results
        if r.dropped_debate is not None and any(t >= r.dropped_at for t in seated.get(r.dropped_debate, []))
    ]
    return round(statistics.median(waits), 2) if waits else None
