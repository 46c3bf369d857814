"""The sign-in pages: plain server-rendered HTML (no JavaScript) and one small stylesheet.

Every interpolated value goes through :func:`h` (HTML escaping, quotes included). Pages use
semantic elements, a label for every control, a visible focus ring, text and buttons with a
contrast ratio above 7:1, and a layout that fits a phone screen.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fedgate_web.roles import RoleChoice

__all__ = [
    "STYLESHEET",
    "CredentialsView",
    "continue_page",
    "credentials_page",
    "device_page",
    "h",
    "login_page",
    "message_page",
    "roles_page",
]


def h(value: object) -> str:
    """``value`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


STYLESHEET = """\
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --accent: #0b4f9c; --line: #c8ccd2; }
* { box-sizing: border-box; }
body { margin: 0; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f6f7f9; }
header { background: #12263f; color: #fff; padding: .75rem 1rem; }
header a { color: #fff; font-weight: 700; text-decoration: none; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
p.lead { color: var(--muted); }
a { color: var(--accent); }
fieldset { border: 1px solid var(--line); border-radius: .5rem; background: #fff; margin: 0 0 1rem;
           padding: .5rem 1rem 1rem; }
legend { font-weight: 700; padding: 0 .25rem; }
.role { display: flex; gap: .75rem; align-items: flex-start; padding: .6rem 0;
        border-top: 1px solid #e6e8eb; }
.role:first-of-type { border-top: 0; }
.role input { margin-top: .35rem; width: 1.15rem; height: 1.15rem; flex: none; }
.role label { cursor: pointer; }
.role .name { font-weight: 600; display: block; }
.role .detail { color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
button, .button { display: inline-block; font: inherit; font-weight: 600; color: #fff;
                  background: var(--accent); border: 2px solid var(--accent); border-radius: .4rem;
                  padding: .55rem 1.1rem; cursor: pointer; text-decoration: none; }
button.secondary { background: #fff; color: var(--accent); }
:focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
input[type=text] { font: inherit; padding: .45rem; border: 1px solid #767676; border-radius: .3rem;
                   width: 100%; max-width: 20rem; }
pre { background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .75rem;
      overflow-x: auto; font-size: .85rem; white-space: pre; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1.5rem 0; }
.actions form { margin: 0; }
.error { border-left: 4px solid #b00020; background: #fff; padding: .5rem 1rem; }
.code { font-family: ui-monospace, monospace; font-size: 1.5rem; letter-spacing: .15em; }
"""


def _layout(title: str, body: str, *, head: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}"
        f"<title>{h(title)} - fedgate</title>\n"
        '<link rel="stylesheet" href="/sso/static/style.css">\n</head>\n<body>\n'
        '<header><a href="/sso/">fedgate</a></header>\n'
        f"<main>\n<h1>{h(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{h(name)}" value="{h(value)}">'


def _post_button(action: str, label: str, token: str, *, secondary: bool = False, extra: str = "") -> str:
    cls = ' class="secondary"' if secondary else ""
    return (
        f'<form method="post" action="{h(action)}">{_hidden("csrf", token)}{extra}'
        f'<button type="submit"{cls}>{h(label)}</button></form>'
    )


def login_page(options: Sequence[tuple[str, str]], notice: str = "") -> str:
    """The sign-in page: one button per configured identity provider."""
    items = "\n".join(f'<a class="button" href="{h(url)}">{h(label)}</a>' for label, url in options)
    note = f'<p class="error" role="alert">{h(notice)}</p>' if notice else ""
    return _layout(
        "Sign in",
        f'{note}<p class="lead">Sign in with your organisation\'s account to get temporary credentials.</p>'
        f'<div class="actions">{items}</div>',
    )


def roles_page(
    groups: Sequence[tuple[str, Sequence[RoleChoice]]],
    *,
    who: str,
    token: str,
    logout_token: str,
    request: str = "",
    purpose: str = "",
    selected: str | None = None,
) -> str:
    """The role chooser: one radio button per role, grouped by account, and a sign-out button."""
    if not groups:
        body = (
            f'<p class="lead">Signed in as <strong>{h(who)}</strong>.</p>'
            '<p class="error" role="alert">Your identity grants no role here. Ask an administrator.</p>'
            + _post_button("/sso/logout", "Sign out", logout_token)
        )
        return _layout("No roles available", body)
    only = sum(len(g) for _, g in groups) == 1
    fieldsets = []
    index = 0
    for account, roles in groups:
        rows = []
        for role in roles:
            index += 1
            checked = " checked" if (only or role.arn == selected) else ""
            detail = role.description or role.arn
            rows.append(
                f'<div class="role"><input type="radio" name="role" id="role-{index}" value="{h(role.arn)}"'
                f' required{checked}><label for="role-{index}"><span class="name">{h(role.name)}</span>'
                f'<span class="detail">{h(detail)}</span></label></div>'
            )
        fieldsets.append(f"<fieldset><legend>Account {h(account)}</legend>{''.join(rows)}</fieldset>")
    button = {"cli": "Send credentials to the CLI", "device": "Approve the device"}.get(
        purpose, "Get credentials"
    )
    intro = {
        "cli": "The fedgate command line on this computer asks for credentials. Choose a role to send it.",
        "device": "A device asks for credentials. Choose the role it may use.",
    }.get(purpose, "Choose the role to get temporary credentials for.")
    body = (
        f'<p class="lead">Signed in as <strong>{h(who)}</strong>. {h(intro)}</p>'
        f'<form method="post" action="/sso/roles">{_hidden("csrf", token)}'
        + (_hidden("request", request) if request else "")
        + "".join(fieldsets)
        + f'<div class="actions"><button type="submit">{h(button)}</button></div></form>'
        + '<div class="actions">'
        + _post_button("/sso/logout", "Sign out", logout_token, secondary=True)
        + "</div>"
    )
    return _layout("Choose a role", body)


@dataclass(frozen=True, slots=True)
class CredentialsView:
    """What the credentials page shows."""

    role_name: str
    role_arn: str
    assumed_role_arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    endpoint: str
    region: str


def credentials_page(view: CredentialsView, *, token_renew: str, token_logout: str, now: float) -> str:
    """Credentials ready to copy, their expiry, and the renew and sign-out buttons."""
    expires = view.expiration.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    minutes = max(int((view.expiration.timestamp() - now) // 60), 0)
    exports = (
        f"export AWS_ACCESS_KEY_ID={view.access_key_id}\n"
        f"export AWS_SECRET_ACCESS_KEY={view.secret_access_key}\n"
        f"export AWS_SESSION_TOKEN={view.session_token}\n"
        f"export AWS_ENDPOINT_URL_STS={view.endpoint}\n"
        f"export AWS_DEFAULT_REGION={view.region}"
    )
    powershell = (
        f'$Env:AWS_ACCESS_KEY_ID="{view.access_key_id}"\n'
        f'$Env:AWS_SECRET_ACCESS_KEY="{view.secret_access_key}"\n'
        f'$Env:AWS_SESSION_TOKEN="{view.session_token}"\n'
        f'$Env:AWS_ENDPOINT_URL_STS="{view.endpoint}"'
    )
    ini = (
        f"[{view.role_name}]\n"
        f"aws_access_key_id = {view.access_key_id}\n"
        f"aws_secret_access_key = {view.secret_access_key}\n"
        f"aws_session_token = {view.session_token}"
    )
    body = f"""
<dl>
<dt>Role</dt><dd>{h(view.role_name)} <span class="detail">({h(view.role_arn)})</span></dd>
<dt>Session</dt><dd>{h(view.assumed_role_arn)}</dd>
<dt>Expires</dt><dd id="expiry"><time datetime="{h(view.expiration.isoformat())}">{h(expires)}</time>
 (in about {minutes} minutes)</dd>
</dl>
<h2 id="exports-title">Environment variables (bash, zsh)</h2>
<pre tabindex="0" aria-labelledby="exports-title" id="exports">{h(exports)}</pre>
<h2 id="ps-title">Environment variables (PowerShell)</h2>
<pre tabindex="0" aria-labelledby="ps-title">{h(powershell)}</pre>
<h2 id="ini-title">~/.aws/credentials</h2>
<pre tabindex="0" aria-labelledby="ini-title" id="credentials-file">{h(ini)}</pre>
<div class="actions">
{_post_button("/sso/renew", "Renew credentials", token_renew)}
<a class="button" href="/sso/roles">Choose another role</a>
{_post_button("/sso/logout", "Sign out", token_logout, secondary=True)}
</div>
"""
    return _layout(f"Credentials for {view.role_name}", body)


def device_page(token: str, user_code: str = "", notice: str = "") -> str:
    """Enter the code a device shows, to approve it."""
    note = f'<p class="error" role="alert">{h(notice)}</p>' if notice else ""
    body = (
        f'{note}<p class="lead">Enter the code shown on the device or terminal that asks to sign in.</p>'
        f'<form method="post" action="/sso/device">{_hidden("csrf", token)}'
        '<p><label for="user_code">Device code</label><br>'
        f'<input type="text" id="user_code" name="user_code" value="{h(user_code)}" autocomplete="off"'
        ' autocapitalize="characters" spellcheck="false" required></p>'
        '<div class="actions"><button type="submit">Continue</button></div></form>'
    )
    return _layout("Approve a device", body)


def message_page(title: str, text: str, links: Sequence[tuple[str, str]] = (), *, alert: bool = False) -> str:
    """A short page: a message and links onward."""
    para = f'<p class="error" role="alert">{h(text)}</p>' if alert else f"<p>{h(text)}</p>"
    items = "".join(f'<a class="button" href="{h(url)}">{h(label)}</a>' for label, url in links)
    return _layout(title, para + (f'<div class="actions">{items}</div>' if items else ""))


def continue_page(title: str, text: str, url: str, label: str) -> str:
    """A page that moves on to ``url`` by itself (a meta refresh, no script) and offers a link.

    Used to leave for the IdP after a form POST: answering the POST with a redirect to another
    origin would break the pages' ``form-action`` policy, which browsers apply to redirects.
    """
    head = f'<meta http-equiv="refresh" content="0;url={h(url)}">\n'
    body = f'<p>{h(text)}</p><div class="actions"><a class="button" href="{h(url)}">{h(label)}</a></div>'
    return _layout(title, body, head=head)
