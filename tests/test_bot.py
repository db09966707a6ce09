"""The bot end to end on the tiny documents, with the fake embedder and a scripted generator."""

from __future__ import annotations

import re

import pytest

from conftest import FakeGenerator, passage_number
from rag.bot import Bot, Chat, needs_context
from rag.errors import InvalidInputError
from rag.prompts import NOT_FOUND, REFUSAL, SYSTEM
from rag.schema import Answer

CSF_QUESTION = "What is the Coalition Support Fund?"


def csf_reply(messages):
    n = passage_number(messages, "Coalition Support Fund (CSF)")
    return f"The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{n}]."


def share_reply(messages):
    n = passage_number(messages, "over a third")
    return f"CSF accounted for over a third of the funds that Washington provided to Islamabad [{n}]."


def imet_reply(messages):
    n = passage_number(messages, "IMET ceased operations")
    return f"IMET ceased operations in 1990 [{n}]."


@pytest.fixture
def make_bot(tiny_index, fake_embedder):
    settings, _ = tiny_index

    def make(*replies, **changes):
        generator = FakeGenerator(replies)
        return Bot(settings.with_overrides(**changes), embedder=fake_embedder, generator=generator), generator

    return make


def split_stream(items):
    pieces = [item for item in items if isinstance(item, str)]
    answers = [item for item in items if isinstance(item, Answer)]
    return pieces, answers


def test_ask_returns_a_checked_answer_with_citations(make_bot):
    bot, generator = make_bot(csf_reply)
    answer = bot.ask(CSF_QUESTION)
    assert answer.answered and answer.decline_reason is None and answer.rewritten_question is None
    assert answer.question == CSF_QUESTION
    [citation] = answer.citations
    assert f"[{citation.n}]" in answer.answer and "Coalition Support Fund" in answer.answer
    assert citation.supported and citation.source == "seeds/aid-review.md"
    assert "Coalition Support Fund (CSF) to reimburse" in citation.quote
    assert answer.hits[citation.n - 1].chunk_id == citation.chunk_id
    assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    assert answer.unsupported_sentences == []
    assert answer.raw_answer == csf_reply(generator.calls[0]["messages"])
    # One model call, with the fixed system message and the numbered passages.
    [call] = generator.calls
    assert call["messages"][0] == {"role": "system", "content": SYSTEM}
    assert f"Question: {CSF_QUESTION}" in call["messages"][1]["content"]
    numbered = re.findall(r"^\[(\d+)\] ", call["messages"][1]["content"], re.M)
    assert numbered == [str(n) for n in range(1, len(answer.hits) + 1)]
    assert SYSTEM in answer.prompt


def test_ask_stream_yields_text_pieces_then_one_answer_last(make_bot):
    bot, _ = make_bot(csf_reply)
    items = list(bot.ask_stream(CSF_QUESTION))
    pieces, answers = split_stream(items)
    assert len(answers) == 1 and items[-1] is answers[0]
    assert len(pieces) > 3 and all(p for p in pieces)
    assert "".join(pieces) == answers[0].raw_answer


def test_a_reply_that_only_points_is_asked_again_for_a_full_sentence(make_bot):
    def bare_marker(messages):
        return f"[{passage_number(messages, 'Coalition Support Fund (CSF)')}]"

    def rambling(messages):  # one sentence was asked for: what follows it is not kept
        return csf_reply(messages) + " It also paid for IMET."

    bot, generator = make_bot(bare_marker, rambling)
    pieces, [answer] = split_stream(list(bot.ask_stream(CSF_QUESTION)))
    assert answer.answered and "reimbursed Pakistan's army for operating costs" in answer.answer
    assert "IMET" not in answer.answer
    assert len(generator.calls) == 2 and "full sentence" in generator.calls[1]["messages"][-1]["content"]
    assert not "".join(pieces).startswith("[")  # the bare marker was not shown
    # When the second reply says nothing the check accepts, the first reply's quoted stand-in stays.
    bot, generator = make_bot(bare_marker, "NOT_IN_PASSAGES")
    answer = bot.ask(CSF_QUESTION)
    assert answer.answered and "Coalition Support Fund (CSF)" in answer.answer and len(generator.calls) == 2


def test_question_without_evidence_is_declined_without_calling_the_model(make_bot):
    bot, generator = make_bot()  # no scripted reply: any model call fails the test
    items = list(bot.ask_stream("Give me a recipe for chicken biryani"))
    pieces, [answer] = split_stream(items)
    assert generator.calls == []
    assert pieces == [REFUSAL] and answer.answer == REFUSAL
    assert not answer.answered and answer.decline_reason == "no_evidence"
    assert answer.citations == [] and len(answer.hits) > 0  # closest passages, to look for oneself
    assert answer.timings["first_token"] is None and answer.timings["backend"] is None


def test_question_naming_what_no_document_mentions_is_declined_without_calling_the_model(make_bot):
    bot, generator = make_bot()
    # Retrieval finds the CSF passage (shared words), but no document names this act.
    answer = bot.ask("What did the Kerry-Lugar-Berman Act give the Coalition Support Fund?")
    assert generator.calls == []
    assert not answer.answered and answer.decline_reason == "unknown_name" and answer.answer == REFUSAL
    assert answer.hits  # the closest passages are still offered


def test_question_naming_an_uncommon_term_no_document_uses_is_declined_without_calling_the_model(make_bot, fake_embedder, monkeypatch):
    monkeypatch.setattr(fake_embedder, "everyday_words", frozenset("how much fast when port open".split()), raising=False)
    bot, generator = make_bot()
    answer = bot.ask("How much faster than the Gwadar port is orjsonport?")
    assert generator.calls == [] and answer.decline_reason == "unknown_name"


def test_when_the_model_declines_a_sentence_restating_the_question_is_quoted(make_bot):
    bot, generator = make_bot(NOT_FOUND, NOT_FOUND, NOT_FOUND)  # the answer, then each of two passages alone
    items = list(bot.ask_stream("When did relations become tense and IMET cease operations?"))
    pieces, [answer] = split_stream(items)
    assert len(generator.calls) == 3 and pieces == []  # NOT_IN_PASSAGES is never shown
    assert answer.answered and "IMET ceased operations" in answer.answer and answer.citations[0].supported


def test_names_the_documents_use_are_not_unknown(make_bot):
    bot, _ = make_bot(csf_reply, csf_reply)
    assert bot.ask("What is the Coalition Suport Fund?").answered  # a typo is not a new name
    assert bot.ask("Does the ASIO Journal paper say what the Coalition Support Fund is?").answered


@pytest.mark.parametrize("reply", [NOT_FOUND, ["NOT", "_IN", "_PASS", "AGES"], [" ", "NOT_IN_PASSAGES", "\n"]])
def test_model_declining_gives_the_refusal_and_never_shows_the_marker(make_bot, reply):
    bot, generator = make_bot(reply, reply, reply, reply)  # declines, with each of two passages alone too, and points at nothing
    items = list(bot.ask_stream("When did the Gwadar port open?"))
    pieces, [answer] = split_stream(items)
    assert len(generator.calls) == 4
    assert not answer.answered and answer.decline_reason == "model_declined"
    assert answer.answer == REFUSAL and answer.citations == []
    assert not any("NOT" in p or "PASS" in p for p in pieces)
    assert NOT_FOUND in answer.raw_answer


def test_answer_the_check_rejects_entirely_is_retried_then_declined_as_unsupported(make_bot):
    wrong = "The Gwadar port was built by Musharraf in 1999 [1]."
    bot, generator = make_bot(wrong, wrong, wrong, wrong)
    answer = bot.ask("Who built the Gwadar port?")
    assert len(generator.calls) == 4  # the answer, once more with each of the first two passages, then pointing
    assert not answer.answered and answer.decline_reason == "unsupported" and answer.answer == REFUSAL
    assert answer.unsupported_sentences == ["The Gwadar port was built by Musharraf in 1999."]


def test_an_answer_the_check_rejects_entirely_is_retried_like_a_decline(make_bot):
    wrong = lambda m: f"The Gwadar port opened in 1999 [{passage_number(m, 'Gwadar port opened')}]."  # noqa: E731
    right = lambda m: f"The Gwadar port opened in 2007 [{passage_number(m, 'Gwadar port opened')}]."  # noqa: E731
    bot, generator = make_bot(wrong, right)
    answer = bot.ask("When did the Gwadar port open?", k=3)
    assert len(generator.calls) == 2 and answer.answered and "2007" in answer.answer and "1999" not in answer.answer


def test_unsupported_sentence_is_removed_from_an_answer(make_bot):
    def reply(messages):
        return csf_reply(messages) + " It was founded by Musharraf in 1999."

    bot, _ = make_bot(reply)
    answer = bot.ask(CSF_QUESTION)
    assert answer.answered and "Musharraf" not in answer.answer
    assert answer.unsupported_sentences == ["It was founded by Musharraf in 1999."]
    assert "Musharraf" in answer.raw_answer


def test_follow_up_with_a_pronoun_is_rewritten_by_the_model(make_bot):
    rewritten = "How much of the funds did the Coalition Support Fund account for?"
    bot, generator = make_bot(csf_reply, rewritten, share_reply)
    chat = Chat(bot)
    first = chat.ask(CSF_QUESTION)
    second = chat.ask("How much of the funds did it account for?")
    assert first.rewritten_question is None
    assert second.rewritten_question == rewritten
    assert second.question == "How much of the funds did it account for?"
    assert second.answered and "over a third" in second.answer
    assert "rewrite" in second.timings
    assert len(generator.calls) == 3
    rewrite_call, answer_call = generator.calls[1], generator.calls[2]
    assert rewrite_call["stop"] == ["\n"]
    assert f"Previous question: {CSF_QUESTION}" in rewrite_call["messages"][1]["content"]
    assert f"Previous answer: {first.answer}" in rewrite_call["messages"][1]["content"]
    assert "Follow-up question: How much of the funds did it account for?" in rewrite_call["messages"][1]["content"]
    assert f"Question: {rewritten}" in answer_call["messages"][1]["content"]
    assert [q for q, _ in chat.history] == [CSF_QUESTION, "How much of the funds did it account for?"]


def test_a_citation_marker_leaked_into_the_rewrite_does_not_throw_the_answer_away(make_bot):
    # Seen on an AVX2 machine: the rewrite kept the previous answer's "[1]", the model then
    # answered with the passage word for word, and the "1" the question seemed to ask about, found
    # in no passage, made the check decline.
    leaked = "How much of the funds did the Coalition Support Fund (CSF) account for? [1]"
    verbatim = lambda m: f"CSF accounted for over a third of the funds that Washington provided to Islamabad [{passage_number(m, 'over a third')}]."  # noqa: E731
    bot, _ = make_bot(csf_reply, leaked, verbatim)
    chat = Chat(bot)
    chat.ask(CSF_QUESTION)
    second = chat.ask("How much of the funds did it account for?")
    assert second.rewritten_question == "How much of the funds did the Coalition Support Fund (CSF) account for?"
    assert second.answered and "over a third" in second.answer


def test_follow_up_without_pronouns_is_not_rewritten(make_bot):
    bot, generator = make_bot(csf_reply, imet_reply)
    chat = Chat(bot)
    chat.ask(CSF_QUESTION)
    answer = chat.ask("When did IMET cease operations?")
    assert answer.rewritten_question is None and "rewrite" not in answer.timings
    assert len(generator.calls) == 2 and answer.answered


@pytest.mark.parametrize("rewrite", [
    "Sure! Here you go:",  # not a question
    "How much of the funds did it account for?",  # the question given back: "it" still unresolved
])
def test_a_rewrite_that_resolves_nothing_falls_back_to_both_questions(make_bot, rewrite):
    bot, _ = make_bot(csf_reply, rewrite, share_reply)
    chat = Chat(bot)
    chat.ask(CSF_QUESTION)
    answer = chat.ask("How much of the funds did it account for?")
    assert answer.rewritten_question == f"{CSF_QUESTION} How much of the funds did it account for?"


def test_first_question_is_never_rewritten_even_with_a_pronoun(make_bot):
    bot, generator = make_bot(imet_reply)
    answer = bot.ask("When did it happen that IMET ceased operations?")
    assert answer.rewritten_question is None and len(generator.calls) == 1


def test_chat_clear_forgets_the_history(make_bot):
    bot, generator = make_bot(csf_reply, csf_reply)
    chat = Chat(bot)
    chat.ask(CSF_QUESTION)
    chat.clear()
    chat.ask("What is the Coalition Support Fund, and what did it do?")
    assert len(generator.calls) == 2  # no rewrite call after clearing


@pytest.mark.parametrize("question, expected", [
    ("How much did it account for?", True),
    ("And the IMET programme?", True),
    ("What about Gwadar?", True),
    ("When did IMET cease operations?", False),
    ("Why?", True),  # too short to stand alone
])
def test_needs_context(question, expected):
    assert needs_context(question) is expected


def test_timings_report_stages_backend_and_model(make_bot):
    bot, _ = make_bot(csf_reply)
    timings = bot.ask(CSF_QUESTION).timings
    assert {"retrieval", "first_token", "total", "backend", "model"} <= set(timings)
    assert timings["backend"] == "fake" and timings["model"] == "fake-model"
    assert 0 <= timings["retrieval"] <= timings["first_token"] <= timings["total"]
    assert timings["prompt_tokens"] > 0 and timings["completion_tokens"] > 0


def test_k_limits_the_passages_the_model_sees(make_bot):
    bot, generator = make_bot(imet_reply)
    answer = bot.ask("When did IMET cease operations?", k=1)
    assert len(answer.hits) == 1
    assert re.findall(r"^\[(\d+)\] ", generator.calls[0]["messages"][1]["content"], re.M) == ["1"]


@pytest.mark.parametrize("question, k", [("", None), ("   ", None), ("x" * 100_000, None), ("What is CSF?", 0), ("What is CSF?", -1)])
def test_bad_input_is_rejected_before_anything_loads(tmp_path, question, k):
    from conftest import tiny_settings_for

    bot = Bot(tiny_settings_for(tmp_path / "nothing-here"), generator=FakeGenerator())
    with pytest.raises(InvalidInputError):
        bot.ask(question, k=k)
    with pytest.raises(InvalidInputError):
        bot.search(question, k=k)
    assert "retriever" not in vars(bot) and "embedder" not in vars(bot)  # nothing was loaded


def test_search_gives_ranked_hits_without_the_model(make_bot):
    bot, generator = make_bot()
    hits = bot.search("When did IMET cease operations?", k=2)
    assert len(hits) == 2 and "IMET ceased operations" in hits[0].text
    assert generator.calls == []


def test_a_decline_is_retried_once_with_the_best_passage_alone(make_bot):
    def focused_reply(messages):
        return f"The Gwadar port opened in 2007 [{passage_number(messages, 'Gwadar port opened')}]."

    bot, generator = make_bot(NOT_FOUND, focused_reply)
    answer = bot.ask("When did the Gwadar port open?", k=3)
    assert len(generator.calls) == 2
    first, retry = (call["messages"][-1]["content"] for call in generator.calls)
    assert "[2] " in first and "[2] " not in retry and "[1] " in retry  # the retry sees one passage
    assert answer.answered and "2007" in answer.answer
    assert len(answer.hits) == 1 and answer.citations[0].n == 1


def test_a_decline_is_retried_with_the_second_passage_alone_when_the_first_alone_declines(make_bot):
    """The evidence ranked second: with two passages and with the first alone the model declined."""
    def only_with_the_port(messages):
        text = messages[1]["content"]
        alone = len(re.findall(r"^\[\d+\] ", text, re.M)) == 1
        return f"The Gwadar port opened in 2007 [{passage_number(messages, 'Gwadar port opened')}]." if alone and "Gwadar port opened" in text else NOT_FOUND

    bot, generator = make_bot(NOT_FOUND, only_with_the_port, only_with_the_port)
    answer = bot.ask("When did the port open after training ceased operations?")
    assert "Gwadar port opened" not in generator.calls[1]["messages"][1]["content"]  # the first passage was not it
    assert answer.answered and "2007" in answer.answer and answer.citations[0].supported


def test_no_retry_when_only_one_passage_was_given(make_bot):
    bot, generator = make_bot(NOT_FOUND, NOT_FOUND)
    answer = bot.ask("When did the Gwadar port open?", k=1)
    assert len(generator.calls) == 2 and not answer.answered  # the answer, then the request to point at a sentence


def test_after_two_declines_a_sentence_the_model_points_at_is_quoted(make_bot):
    copy = lambda m: f"The Gwadar port opened in 2007 with Chinese funding [{passage_number(m, 'Gwadar port opened')}]"  # noqa: E731
    bot, generator = make_bot(NOT_FOUND, NOT_FOUND, NOT_FOUND, copy)
    # 3 of the question's 6 stems (less the title's) are in the sentence: too few to quote unasked (75%).
    answer = bot.ask("In what year did the Gwadar port open its first berths with Chinese funding?")
    assert answer.answered and "2007" in answer.answer and answer.citations[0].supported
    assert "copy, word for word, the one sentence" in generator.calls[3]["messages"][1]["content"]


@pytest.mark.parametrize("pointed", [
    "The Gwadar port opened in 2009 with Indian funding [1]",  # not a sentence of the passages
    "It handles cargo ships bound for Central Asia [1]",  # in a passage, but no time and little of the question
])
def test_a_pointed_sentence_that_is_not_found_or_not_an_answer_is_declined(make_bot, pointed):
    bot, _ = make_bot(NOT_FOUND, NOT_FOUND, NOT_FOUND, pointed)
    assert not bot.ask("In what year did the Gwadar port open its first berths with Chinese funding?").answered


def test_the_prompt_prefix_is_warmed_once_however_the_generator_is_first_used(tiny_index, fake_embedder):
    class WarmingGenerator(FakeGenerator):
        def __init__(self, replies):
            super().__init__(replies)
            self.warmed = []

        def warm_up(self, messages):
            self.warmed.append(messages)

    settings, _ = tiny_index
    for first_use in ("warm_up", "ask"):
        generator = WarmingGenerator([csf_reply, csf_reply])
        bot = Bot(settings, embedder=fake_embedder, generator=generator)
        if first_use == "warm_up":
            bot.warm_up()
        bot.ask(CSF_QUESTION)
        bot.ask(CSF_QUESTION)
        [prefix] = generator.warmed
        assert prefix[0] == {"role": "system", "content": SYSTEM}


def test_a_part_of_a_compound_question_left_out_is_asked_for_again(make_bot):
    question = "When did IMET cease operations, and who established the Coalition Support Fund?"
    year_only = lambda m: f"IMET ceased operations in 1990 [{passage_number(m, 'IMET ceased operations')}]."  # noqa: E731
    who = lambda m: f"The United States established the Coalition Support Fund [{passage_number(m, 'Coalition Support Fund (CSF)')}]."  # noqa: E731
    bot, generator = make_bot(year_only, who)
    answer = bot.ask(question)
    assert answer.answered and "1990" in answer.answer and "United States" in answer.answer
    assert "Answer only this part: who established the Coalition Support Fund?" in generator.calls[1]["messages"][1]["content"]


def test_a_part_the_passages_do_not_answer_is_said_to_be_missing(make_bot):
    question = "When did IMET cease operations, and who was its director?"
    year_only = lambda m: f"IMET ceased operations in 1990 [{passage_number(m, 'IMET ceased operations')}]."  # noqa: E731
    bot, _ = make_bot(year_only, "NOT_IN_PASSAGES")
    answer = bot.ask(question)
    assert answer.answered and "1990" in answer.answer
    assert answer.answer.endswith("The passages do not say who was its director.")


def test_a_part_answered_with_the_answer_again_is_said_to_be_missing(make_bot):
    # "What share ...?" answered again with the count the answer gave: a number, but no new one.
    question = "How many tonnes did the Karachi port handle in 2019, and what share of the cargo was that?"
    count = lambda m: f"The Karachi port handled 40 million tonnes [{passage_number(m, 'Karachi port handled')}]."  # noqa: E731
    bot, _ = make_bot(count, count)
    answer = bot.ask(question)
    assert answer.answered and answer.answer.count("40 million tonnes") == 1
    assert answer.answer.endswith("The passages do not say what share of the cargo that was.")


def test_an_answer_of_another_kind_than_asked_is_asked_again_then_declined(make_bot):
    # "When ...?" answered with what happened, twice: no time is given, so nothing is answered.
    no_time = lambda m: f"IMET trained Pakistani officers in America [{passage_number(m, 'trained Pakistani officers')}]."  # noqa: E731
    bot, generator = make_bot(no_time, no_time, "NOT_IN_PASSAGES")
    answer = bot.ask("When did IMET train Pakistani officers in America?")
    assert not answer.answered and answer.decline_reason == "unsupported"
    assert "Answer with the year or date only." in generator.calls[1]["messages"][1]["content"]
    # Last, the passages ranked after those given are read once, under the same checks.
    def passages(call):
        return set(re.findall(r"(?m)^\[\d+\] (.+)$", call["messages"][1]["content"]))
    assert len(generator.calls) == 3 and passages(generator.calls[2]) and not passages(generator.calls[2]) & passages(generator.calls[0])


def test_a_reply_of_only_a_list_number_is_retried_like_a_decline(make_bot):
    # Seen: "Which technology ...?" answered "2", the number of the list item that answers.
    trained = lambda m: f"The IMET programme trained Pakistani officers in America [{passage_number(m, 'trained Pakistani officers')}]."  # noqa: E731
    bot, generator = make_bot("2", trained)
    answer = bot.ask("Which programme trained Pakistani officers in America?")
    assert len(generator.calls) == 2 and generator.calls[1]["messages"][1]["content"].count("\n[") == 1  # the focused retry
    assert answer.answered and "IMET" in answer.answer and not answer.answer.startswith("2")


def test_a_compound_question_declined_whole_is_asked_part_by_part(make_bot):
    question = "Which fund reimbursed the army, and when did the officer training programme end?"
    fund = lambda m: f"The Coalition Support Fund reimbursed the army [{passage_number(m, 'Coalition Support Fund (CSF)')}]."  # noqa: E731
    bot, generator = make_bot(*[NOT_FOUND] * 4, fund, NOT_FOUND)
    pieces, [answer] = split_stream(list(bot.ask_stream(question)))
    assert answer.answered and "Coalition Support Fund" in answer.answer
    assert answer.answer.endswith("The passages do not say when did the officer training programme end.")
    assert "".join(pieces).strip() == answer.answer  # the parts' replies are shown once, checked
    assert "Answer only this part: Which fund reimbursed the army" in generator.calls[4]["messages"][1]["content"]


def test_a_compound_question_no_part_of_which_is_answered_is_declined(make_bot):
    question = "Which fund reimbursed the army, and when did the officer training programme end?"
    bot, generator = make_bot(*[NOT_FOUND] * 6)
    pieces, [answer] = split_stream(list(bot.ask_stream(question)))
    assert not answer.answered and len(generator.calls) == 6
    assert "passages do not say" not in "".join(pieces)


def test_a_part_the_answers_own_sentence_states_is_quoted_from_it(make_bot):
    # Asked again for the year, the model repeats the count; the passage sentence it rests on holds the year.
    question = "How many tonnes did the Karachi port handle, and in what year?"
    count = lambda m: f"The Karachi port handled 40 million tonnes [{passage_number(m, 'Karachi port handled')}]."  # noqa: E731
    bot, generator = make_bot(count, count)
    pieces, [answer] = split_stream(list(bot.ask_stream(question)))
    assert answer.answered and "2019" in answer.answer and "do not say" not in answer.answer
    assert "The Karachi port handled 40 million tonnes of cargo in 2019" in "".join(pieces)
    assert all(c.supported for c in answer.citations) and len(generator.calls) == 2


def test_after_every_attempt_declines_the_text_after_each_passage_is_read(make_bot):
    """The passage given ends where the answer begins (a scene-setting opening ranks first)."""
    bot, generator = make_bot(NOT_FOUND, NOT_FOUND, csf_reply)  # the answer, pointing, then what follows
    answer = bot.ask("How was Pakistan seen by the US in the region?", k=1)
    first, last = (call["messages"][-1]["content"] for call in (generator.calls[0], generator.calls[-1]))
    assert len(generator.calls) == 3 and "Coalition Support Fund" not in first and "$73 billion" not in last
    assert last.split("Passages:\n")[1].startswith("[1] In addition, the United States established the Coalition Support Fund")
    assert answer.answered and "Coalition Support Fund" in answer.answer and answer.citations[0].supported
    assert "Coalition Support Fund" in answer.hits[answer.citations[0].n - 1].text


def test_nothing_more_is_asked_when_every_passage_given_ends_its_section(make_bot):
    bot, generator = make_bot(NOT_FOUND, NOT_FOUND)
    assert not bot.ask("What did officers learn in the IMET years?", k=1).answered and len(generator.calls) == 2
