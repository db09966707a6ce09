"""Settings from the environment, the error types' exit codes, and the records' JSON forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import (ConfigError, DocumentError, IndexCorruptError, IndexMissingError, IndexStaleError, InvalidInputError,
                        ModelCorruptError, ModelMissingError, PakusError)
from rag.schema import Answer, Chunk, Citation, Document, Hit
from rag.settings import BACKENDS, Settings

# --- settings --------------------------------------------------------------------------------------------


def test_defaults():
    settings = Settings(project_root=Path("/p"))
    assert (settings.k, settings.chunk_max_tokens, settings.chunk_overlap_sentences, settings.backend) == (None, 64, 1, "llama-cpp")
    assert settings.seeds == Path("/p/seeds") and settings.index == Path("/p/index")


def test_from_env_reads_pakus_variables():
    settings = Settings.from_env({"PAKUS_K": "4", "PAKUS_BACKEND": " transformers ", "PAKUS_PROJECT_ROOT": "/p",
                                  "PAKUS_INDEX_DIR": "/elsewhere/index", "PAKUS_THREADS": "", "OTHER": "x"})
    assert settings.k == 4 and settings.backend == "transformers"
    assert settings.project_root == Path("/p") and settings.index == Path("/elsewhere/index") and settings.seeds == Path("/p/seeds")
    assert settings.threads >= 1  # empty means unset


def test_pakus_home_is_where_collections_live_and_the_project_root_stays():
    settings = Settings.from_env({"PAKUS_HOME": "/home/p", "PAKUS_PROJECT_ROOT": "/p", "PAKUS_COLLECTION": "papers"})
    assert settings.home == Path("/home/p") and settings.project_root == Path("/p") and settings.collection == "papers"
    assert Settings.from_env({"XDG_DATA_HOME": "/data"}).home.name == "pakus"


def test_an_unsafe_collection_name_is_refused():
    with pytest.raises(ConfigError, match="invalid collection name"):
        Settings.from_env({"PAKUS_COLLECTION": "../../etc"})


@pytest.mark.parametrize("environ, says", [
    ({"PAKUS_K": "many"}, "PAKUS_K must be a whole number"),
    ({"PAKUS_K": "0"}, "k must be a positive whole number"),
    ({"PAKUS_K": "21"}, "between 1 and 20"),
    ({"PAKUS_BACKEND": "vllm"}, "valid backends: llama-cpp, transformers"),
    ({"PAKUS_THREADS": "-2"}, "threads"),
])
def test_invalid_values_are_config_errors_that_say_what_is_valid(environ, says):
    with pytest.raises(ConfigError, match=says):
        Settings.from_env(environ)


def test_overrides_ignore_unset_options():
    settings = Settings(project_root=Path("/p"))
    changed = settings.with_overrides(k=5, backend=None, model_path=None)
    assert changed.k == 5 and changed.backend == settings.backend and settings.k is None
    with pytest.raises(ConfigError):
        settings.with_overrides(k=0)
    assert BACKENDS == ("llama-cpp", "transformers", "openai")


# --- errors ---------------------------------------------------------------------------------------------


def test_input_errors_exit_2_and_everything_else_1():
    assert issubclass(ConfigError, InvalidInputError) and InvalidInputError.exit_code == ConfigError.exit_code == 2
    for error in (IndexMissingError, IndexCorruptError, IndexStaleError, DocumentError, ModelMissingError, ModelCorruptError):
        assert issubclass(error, PakusError) and error.exit_code == 1


# --- records ---------------------------------------------------------------------------------------------

CHUNK = Chunk("abc", "seeds/a.md", "Title", "Intro", 10, 30, "Some text here.", "content")


def test_chunk_round_trips_through_its_dict():
    assert Chunk.from_dict(CHUNK.to_dict()) == CHUNK


def test_hit_dict_is_the_search_contract():
    hit = Hit(rank=1, chunk=CHUNK, score=0.0327868852, dense_score=0.61234567, lexical_score=None, dense_rank=1)
    assert hit.to_dict() == {"rank": 1, "chunk_id": "abc", "source": "seeds/a.md", "title": "Title", "section": "Intro",
                             "page": None, "start": 10, "end": 30, "text": "Some text here.", "score": 0.032787, "dense_score": 0.612346,
                             "lexical_score": None, "dense_rank": 1, "lexical_rank": None}


def test_answer_dict_is_the_ask_contract():
    citation = Citation(1, "seeds/a.md", "Title", "Intro", 10, 25, "Some text here.", True, 1.0, "abc", "Some text here.")
    answer = Answer("Q?", "A [1].", True, [citation], [Hit(1, CHUNK, 0.1)], {"total": 1.0}, raw_answer="A [1].")
    data = answer.to_dict()
    assert {"question", "answer", "answered", "citations", "hits", "timings", "rewritten_question", "decline_reason",
            "unsupported_sentences", "raw_answer"} == set(data)
    assert data["citations"][0] == {"n": 1, "source": "seeds/a.md", "title": "Title", "section": "Intro", "start": 10, "end": 25,
                                    "quote": "Some text here.", "supported": True, "score": 1.0, "chunk_id": "abc",
                                    "passage": "Some text here.", "page": None}
    assert data["hits"][0]["chunk_id"] == "abc" and "prompt" not in data


def test_document_original_span_is_half_open():
    document = Document("a.txt", "a", "ab cd", [0, 1, 5, 6, 7])  # "ab\n\n\ncd"-like gaps
    assert document.original_span(0, 2) == (0, 2)
    assert document.original_span(3, 5) == (6, 8)
    assert document.original_span(0, 5) == (0, 8)
    assert document.original_span(2, 2) == (5, 5)
