"""Near-duplicate stories: a lightly edited copy groups with its original, other stories do not, and the
groups stay right through replacement, removal and a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.analysis import analyse, clean_text, fold
from indexer.near_duplicates import FILE, Deduper, folded_syllables, shingles

RELEASE = """Ngày 12/3, UBND tỉnh Thái Bình tổ chức hội nghị tổng kết công tác cải cách hành chính năm 2024 và
triển khai nhiệm vụ năm 2025. Theo báo cáo, năm qua tỉnh đã rà soát, đơn giản hóa 215 thủ tục hành chính,
tỷ lệ hồ sơ được giải quyết đúng hạn đạt 99,2%. Toàn tỉnh có 1.856 thủ tục hành chính được cung cấp dưới
dạng dịch vụ công trực tuyến toàn trình, tỷ lệ hồ sơ nộp trực tuyến đạt 78%. Chỉ số hài lòng của người dân,
doanh nghiệp đối với sự phục vụ của cơ quan hành chính nhà nước đạt 86,5%, tăng 3 bậc so với năm trước.
Phát biểu chỉ đạo hội nghị, Phó Chủ tịch UBND tỉnh yêu cầu các sở, ngành, địa phương tiếp tục đẩy mạnh
chuyển đổi số, nâng cao chất lượng bộ phận một cửa các cấp, xử lý nghiêm cán bộ gây phiền hà, sách nhiễu
người dân và doanh nghiệp trong giải quyết thủ tục hành chính."""

# The same release as a district portal reposts it: a new title and dateline, a sentence dropped, typography.
REPOST = """Thái Bình: Tổng kết công tác CCHC năm 2024
(Cổng TTĐT huyện Vũ Thư) - Ngày 12/3, UBND tỉnh Thái Bình tổ chức hội nghị tổng kết công tác cải cách hành
chính năm 2024 và triển khai nhiệm vụ năm 2025. Theo báo cáo, năm qua tỉnh đã rà soát, đơn giản hoá 215 thủ
tục hành chính, tỷ lệ hồ sơ được giải quyết đúng hạn đạt 99,2%. Toàn tỉnh có 1.856 thủ tục hành chính được
cung cấp dưới dạng dịch vụ công trực tuyến toàn trình, tỷ lệ hồ sơ nộp trực tuyến đạt 78%. Phát biểu chỉ đạo
hội nghị, Phó Chủ tịch UBND tỉnh yêu cầu các sở, ngành, địa phương tiếp tục đẩy mạnh chuyển đổi số, nâng cao
chất lượng bộ phận “một cửa” các cấp, xử lý nghiêm cán bộ gây phiền hà, sách nhiễu người dân và doanh nghiệp
trong giải quyết thủ tục hành chính. Tin: Minh Anh."""

OTHER = """Sáng 12/3, Sở Giáo dục và Đào tạo Hà Nội công bố phương án tuyển sinh vào lớp 10 năm học 2025-2026.
Theo đó, thí sinh thi ba môn Toán, Ngữ văn và Ngoại ngữ; điểm xét tuyển là tổng điểm ba bài thi, không nhân
hệ số. Kỳ thi dự kiến diễn ra vào đầu tháng 6, với hơn 125.000 học sinh dự thi. Các trường THPT công lập
tuyển khoảng 60% số học sinh tốt nghiệp THCS; phần còn lại học ở trường tư thục, giáo dục thường xuyên hoặc
học nghề. Sở đề nghị các trường tổ chức tư vấn hướng nghiệp, phân luồng học sinh từ sớm."""

# Same subject (administrative reform) and many shared phrases, but another province and other facts.
SAME_TOPIC = """Ngày 14/3, UBND tỉnh Nam Định tổ chức hội nghị sơ kết công tác cải cách hành chính quý I. Theo báo
cáo, tỉnh đã công bố 96 thủ tục hành chính mới, bãi bỏ 41 thủ tục; tỷ lệ hồ sơ giải quyết đúng hạn đạt 97%.
Nhiều xã còn chậm số hóa hồ sơ, kết quả giải quyết thủ tục. Chủ tịch UBND tỉnh đề nghị các huyện kiện toàn
đội ngũ công chức bộ phận một cửa, công khai xin lỗi người dân khi trả kết quả trễ hẹn."""


def unmarked(text: str) -> str:
    """The text as typed without Vietnamese marks, case kept (ASCII letters)."""
    return "".join(f.upper() if c.isupper() else f for c, f in ((c, fold(c) or c) for c in text))


@pytest.fixture
def dedup() -> Deduper:
    """An empty Deduper at the default threshold."""
    return Deduper()


def test_folded_syllables_are_the_analysers():
    text = clean_text(REPOST)
    assert folded_syllables(text) == analyse(text).folded


def test_marks_and_typography_do_not_change_shingles():
    assert shingles(folded_syllables(RELEASE)) == shingles(folded_syllables(unmarked(RELEASE)))
    assert shingles(folded_syllables("hòa bình “một cửa”")) == shingles(folded_syllables('hoà bình "một cửa"'))


def test_a_light_edit_joins_the_original_story(dedup):
    assert dedup.add("portal/1", RELEASE, published="2025-03-12") == "portal/1"
    assert dedup.add("district/7", REPOST, published="2025-03-13") == "portal/1"
    assert dedup.similarity("portal/1", "district/7") >= dedup.params.threshold
    assert dedup.groups() == {"portal/1": ["portal/1", "district/7"]}
    assert dedup.similar("district/7") == ["portal/1"]


def test_with_and_without_marks_is_one_story(dedup):
    dedup.add("marked", RELEASE)
    assert dedup.add("unmarked", unmarked(RELEASE)) == "marked"
    assert dedup.similarity("marked", "unmarked") == 1.0


def test_different_stories_stay_apart(dedup):
    for doc_id, text in [("a", RELEASE), ("b", OTHER), ("c", SAME_TOPIC)]:
        assert dedup.add(doc_id, text) == doc_id
    assert dedup.groups() == {}
    assert dedup.similarity("a", "c") < dedup.params.threshold


def test_story_id_is_the_earliest_member(dedup):
    dedup.add("late", REPOST, published="2025-03-14")
    dedup.add("undated", RELEASE)
    assert dedup.story("late") == "late"  # the dated one comes before the undated
    assert dedup.add("early", RELEASE + " Tin: PV.", published="2025-03-12") == "early"
    assert dedup.groups() == {"early": ["early", "late", "undated"]}
    assert dedup.stories() == {"early": "early", "late": "early", "undated": "early"}


def test_removal_splits_a_chain():
    # a ~ b and b ~ c, but a has nothing in common with c: removing b leaves two stories.
    a = SAME_TOPIC + "\n" + RELEASE
    b = RELEASE + "\n" + OTHER
    c = OTHER + "\nTheo Sở Giáo dục, học sinh cần theo dõi lịch thi trên cổng thông tin của sở để tránh nhầm lẫn."
    dedup = Deduper(0.25)
    dedup.add("a", a)
    dedup.add("b", b)
    dedup.add("c", c)
    assert dedup.similarity("a", "c") < 0.1
    assert min(dedup.similarity("a", "b"), dedup.similarity("b", "c")) > 0.3
    assert dedup.groups() == {"a": ["a", "b", "c"]}
    dedup.remove("b")
    assert dedup.groups() == {}
    assert dedup.story("a") == "a" and dedup.story("c") == "c" and dedup.story("b") is None
    assert "b" not in dedup and len(dedup) == 2


def test_removing_the_earliest_renames_the_story(dedup):
    dedup.add("first", RELEASE)
    dedup.add("second", REPOST)
    dedup.remove("first")
    assert dedup.story("second") == "second"
    assert dedup.groups() == {}
    dedup.remove("first")  # removing twice is no error
    dedup.remove("never-added")


def test_an_update_moves_an_article_between_stories(dedup):
    dedup.add("x", RELEASE)
    dedup.add("y", REPOST)
    assert dedup.story("y") == "x"
    dedup.add("y", OTHER)  # y's text was replaced by another story
    assert dedup.story("y") == "y" and dedup.groups() == {}
    dedup.add("z", OTHER)
    assert dedup.story("z") == "y"  # y keeps its place in the order of adding
    dedup.add("y", REPOST)
    assert dedup.groups() == {"x": ["x", "y"]}
    assert len(dedup) == 3


def test_short_texts_are_their_own_story(dedup):
    assert dedup.add("a", "Xem video") == "a"
    assert dedup.add("b", "Xem video") == "b"
    assert dedup.add("c", "") == "c"
    assert dedup.signature("Xem video") is None
    assert dedup.groups() == {}
    dedup.remove("a")


def test_signature_from_syllables_or_elsewhere(dedup):
    sig = dedup.signature(syllables=analyse(clean_text(RELEASE)).folded)
    assert sig is not None and sig.dtype == np.uint32 and sig.shape == (dedup.params.num_perm,)
    assert np.array_equal(sig, dedup.signature(RELEASE))
    dedup.add("a", signature=sig)
    assert dedup.add("b", REPOST) == "a"
    with pytest.raises(ValueError):
        dedup.add("c", signature=sig[:10])


def test_save_and_load_round_trip(tmp_path, dedup):
    dedup.add("a", RELEASE, published="2025-03-12")
    dedup.add("b", REPOST, published="2025-03-13")
    dedup.add("c", OTHER)
    dedup.add("d", "Xem video")
    path = tmp_path / "gen-3" / FILE
    dedup.save(path)
    assert [p.name for p in path.parent.iterdir()] == [FILE]  # no temporary file left behind
    loaded = Deduper.load(path)
    assert loaded.params == dedup.params
    assert loaded.stories() == dedup.stories()
    assert loaded.groups() == {"a": ["a", "b"]}
    assert len(loaded) == 4 and "d" in loaded
    # The loaded index goes on working: new copies find their story, removal splits it.
    assert loaded.add("e", REPOST + " Nguồn: Báo Thái Bình.") == "a"
    assert loaded.add("f", OTHER) == "c"
    loaded.remove("a")
    assert loaded.story("b") == "b"
    assert loaded.story("e") == "b"  # b and e are copies of each other too


def test_load_refuses_another_format(tmp_path, dedup):
    path = tmp_path / FILE
    dedup.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["meta"] = np.array('{"format": 99}')
    np.savez(path, **arrays)
    with pytest.raises(ValueError):
        Deduper.load(path)


def test_an_empty_deduper_saves_and_loads(tmp_path):
    path = tmp_path / FILE
    Deduper(0.7).save(path)
    loaded = Deduper.load(path)
    assert len(loaded) == 0 and loaded.params.threshold == 0.7 and loaded.groups() == {}


@pytest.mark.parametrize("threshold", [0, -0.1, 1.5])
def test_threshold_must_be_a_similarity(threshold):
    with pytest.raises(ValueError):
        Deduper(threshold)
