"""The page learns what serves it from the API (so `vlmctl ui` alone shows the demo notice), and its look:
Stop red only while an answer streams, the model picker's text clear of its arrow."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RED = "rgb(220, 38, 38)"


@pytest.mark.slow
def test_standalone_page_shows_the_demo_notice_and_serving_panel(chat, page_server, demo_server):
    """No ``info`` at all, as `vlmctl ui --api-base …` builds it: the panel comes from GET /v1/models."""
    page = page_server(demo_server.api_base)
    chat.open(page.url)
    panel = chat.page.locator("#plan-panel")
    panel.wait_for(state="visible")
    text = panel.inner_text()
    assert "demo model" in text.lower() and "random" in text.lower()
    assert "max context" in text
    card = __import__("httpx").get(demo_server.api_base + "/models").json()["data"][0]
    assert card["id"] in text and f"{card['max_model_len']:,}" in text
    chat.toggle_settings()
    maximum = chat.page.locator("#max-tokens input[type=range]").get_attribute("max")
    assert int(float(maximum)) == card["max_model_len"]  # the max-tokens slider follows the served context
    chat.shot("standalone-demo")


def test_a_plain_openai_endpoint_gets_a_panel_without_a_demo_notice(chat, scripted_page):
    chat.open(scripted_page.url)
    text = chat.page.locator("#plan-panel").inner_text()
    assert "scripted-model" in text and "4,096" in text


def _stop_colour(chat) -> str:
    return chat.page.evaluate("getComputedStyle(document.querySelector('#stop-btn')).backgroundColor")


def test_stop_is_red_only_while_an_answer_streams(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    assert _stop_colour(chat) != RED
    chat.send("LONG answer please")
    chat.wait_state("busy")
    chat.page.wait_for_function(
        f"() => getComputedStyle(document.querySelector('#stop-btn')).backgroundColor === '{RED}'", timeout=5000)
    chat.click("stop-btn")
    chat.wait_state("stopped")
    assert _stop_colour(chat) != RED


def test_model_picker_text_stays_clear_of_its_arrow_and_the_refresh_button(chat, scripted_page):
    chat.open(scripted_page.url)
    page = chat.page
    gap = page.evaluate("""() => {
        const input = document.querySelector('#model-select input');
        const arrow = document.querySelector('#model-select svg');
        const textRight = input.getBoundingClientRect().right - parseFloat(getComputedStyle(input).paddingRight);
        return arrow.getBoundingClientRect().left - textRight;
    }""")
    assert gap >= 0, f"the picker's text runs {-gap:.0f} px under its arrow"
    picker = page.locator("#model-select").bounding_box()
    refresh = page.locator("#refresh-models").bounding_box()
    assert refresh["y"] >= picker["y"] + picker["height"], "the refresh button overlaps the picker"
