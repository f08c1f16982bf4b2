"""The admin console in a real headless Chromium, driven through chromedriver.

Usage: console_browser.py '<json plan>' with
  console: the console URL on replica A's admin listener
  token: the admin token
  gateways: [gateway URL of A, gateway URL of B]
  admins: [admin URL of A, admin URL of B]
  known_key: the id of a key the caller created and used before
  model: the model the caller's requests used

Prints a JSON report; every check that fails raises.
"""

import json
import sys
import time

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def chat(url, key, model):
    r = requests.post(
        url + "/v1/chat/completions",
        headers={"authorization": "Bearer " + key},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    return r.status_code


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)


def main():
    plan = json.loads(sys.argv[1])
    report = {}
    d = browser()
    wait = WebDriverWait(d, 10)
    try:
        d.get(plan["console"])
        # Without the token: only the sign-in is shown, and the API refuses the page.
        wait.until(EC.visibility_of_element_located((By.ID, "token")))
        assert not d.find_element(By.ID, "nav").is_displayed()
        status = d.execute_async_script(
            "const done = arguments[0]; fetch('/admin/keys').then(r => done(r.status));")
        assert status == 401, status
        report["api_without_token"] = status
        d.find_element(By.ID, "token").send_keys("wrong-token")
        d.find_element(By.ID, "login-btn").click()
        err = wait.until(EC.visibility_of_element_located((By.ID, "login-error")))
        assert "refused" in err.text, err.text
        assert not d.find_element(By.ID, "nav").is_displayed()
        report["wrong_token"] = err.text

        # With it: the console loads.
        d.find_element(By.ID, "token").send_keys(plan["token"])
        d.find_element(By.ID, "login-btn").click()
        wait.until(EC.visibility_of_element_located((By.ID, "nav")))

        # Spend: shown when the gateway answers /admin/usage, else a clear empty state.
        usage = requests.get(
            plan["admins"][0] + "/admin/usage",
            params={"group_by": "model"},
            headers={"authorization": "Bearer " + plan["token"]}, timeout=10)
        report["usage_status"] = usage.status_code
        if usage.status_code == 200:
            row = wait.until(EC.visibility_of_element_located(
                (By.CSS_SELECTOR, '#usage-table tr[data-group="%s"]' % plan["model"])))
            report["usage_row"] = row.text
            assert "$" in row.text, row.text
        else:
            empty = wait.until(EC.visibility_of_element_located((By.ID, "usage-empty")))
            assert "No usage data" in empty.text, empty.text
            report["usage_empty"] = empty.text

        # Budgets per team and per route, beside the keys' own: each row shows the spend
        # the admin API reports and what is left.
        budgets = requests.get(
            plan["admins"][0] + "/admin/budgets",
            headers={"authorization": "Bearer " + plan["token"]}, timeout=10).json()["budgets"]
        report["budget_rows"], report["budget_spent"] = {}, {}
        for b in budgets:
            if b["scope"] not in ("team", "route"):
                continue
            row = wait.until(EC.visibility_of_element_located(
                (By.CSS_SELECTOR, '#budget-table tr[data-budget="%s"][data-scope="%s"]'
                 % (b["name"], b["scope"]))))
            assert b["subject"] in row.text, row.text
            left = row.find_element(By.CSS_SELECTOR, "td[data-left]").text
            assert abs(float(left.lstrip("$").replace(",", "")) - float(b["remaining_usd"])) < 0.01, \
                (left, b)
            report["budget_rows"][b["name"]] = row.text
            report["budget_spent"][b["name"]] = float(b["spent_usd"])

        # The keys: the caller's key (used a moment ago) is listed; create one here.
        d.find_element(By.CSS_SELECTOR, 'nav a[data-tab="keys"]').click()
        known = wait.until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, '#keys-table tr[data-key="%s"]' % plan["known_key"])))
        report["known_key_row"] = known.text
        d.find_element(By.ID, "new-name").send_keys("browser-key")
        d.find_element(By.ID, "new-team").send_keys("web")
        d.find_element(By.ID, "create-btn").click()
        shown = wait.until(EC.visibility_of_element_located((By.ID, "new-key")))
        key = shown.text
        assert key.startswith("sk-aigw-"), key
        key_id = key.split("-")[2]
        wait.until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, '#keys-table tr[data-key="%s"]' % key_id)))
        d.find_element(By.ID, "dismiss-key").click()
        assert d.find_element(By.ID, "new-key").text == ""
        for g in plan["gateways"]:
            assert chat(g, key, plan["model"]) == 200

        # Revoked from the page: both replicas refuse it within a second.
        button = d.find_element(By.CSS_SELECTOR, 'button[data-revoke="%s"]' % key_id)
        button.click()
        assert "Confirm" in button.text
        button.click()
        clicked = time.monotonic()
        pending = set(plan["gateways"])
        while pending:
            for g in list(pending):
                if chat(g, key, plan["model"]) == 401:
                    pending.discard(g)
            assert time.monotonic() - clicked < 5, "still accepted after 5 s"
        report["revoked_after_s"] = round(time.monotonic() - clicked, 3)
        wait.until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, '#keys-table tr[data-key="%s"] [data-status="revoked"]' % key_id)))

        # The routes with their backends.
        d.find_element(By.CSS_SELECTOR, 'nav a[data-tab="routes"]').click()
        route = wait.until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, "#routes-table tbody tr")))
        report["route_row"] = route.text

        # Signing out forgets the token.
        d.find_element(By.ID, "logout").click()
        assert d.execute_script("return sessionStorage.getItem('aigw-admin-token')") is None

        # No script error and no content-security-policy violation (the refused calls
        # made on purpose above log their 401s, which are expected).
        problems = [e["message"] for e in d.get_log("browser")
                    if e["level"] == "SEVERE" and " 401" not in e["message"]
                    and ("/admin/usage" not in e["message"] or usage.status_code == 200)]
        assert not problems, problems
        report["key_id"] = key_id
        report["key_secret_tail"] = key.rsplit("-", 1)[1]
    finally:
        d.quit()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
