from course_lib.course_map import CHAPTERS, course_map_markdown
from course_lib.glossary import GLOSSARY, glossary_markdown


def test_chapters_numbered_in_order_and_first_five_ready():
    assert [c.number for c in CHAPTERS] == [f"{i:02d}" for i in range(11)]
    assert all(c.available() for c in CHAPTERS[:5])


def test_course_map_table_has_a_row_per_chapter():
    table = course_map_markdown()
    assert len(table.splitlines()) == 2 + len(CHAPTERS)
    assert "| 02 | 自注意力机制 · Self-attention |" in table


def test_glossary_terms_unique_and_bilingual():
    english = [t.english.lower() for t in GLOSSARY]
    assert len(english) == len(set(english))
    assert all(t.chinese and t.meaning and t.chapter.isdigit() for t in GLOSSARY)
    assert glossary_markdown().count("\n") == len(GLOSSARY) + 1
