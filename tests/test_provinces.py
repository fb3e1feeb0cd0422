"""Provinces after 1 July 2025: the mapping of all 63 former provinces, name lookup and recognition in text."""

from __future__ import annotations

import pytest

from indexer.analysis import fold
from indexer.provinces import (
    Province,
    canonical_name,
    current_unit,
    facet_label,
    find_provinces,
    former_provinces,
    mentions,
    units,
)

# Nghị quyết 202/2025/QH15, typed here to check the package's data against the resolution itself.
MERGED = {
    "Tuyên Quang": ["Tuyên Quang", "Hà Giang"],
    "Lào Cai": ["Lào Cai", "Yên Bái"],
    "Thái Nguyên": ["Thái Nguyên", "Bắc Kạn"],
    "Phú Thọ": ["Phú Thọ", "Vĩnh Phúc", "Hòa Bình"],
    "Bắc Ninh": ["Bắc Ninh", "Bắc Giang"],
    "Hưng Yên": ["Hưng Yên", "Thái Bình"],
    "Hải Phòng": ["Hải Phòng", "Hải Dương"],
    "Ninh Bình": ["Ninh Bình", "Hà Nam", "Nam Định"],
    "Quảng Trị": ["Quảng Trị", "Quảng Bình"],
    "Đà Nẵng": ["Đà Nẵng", "Quảng Nam"],
    "Quảng Ngãi": ["Quảng Ngãi", "Kon Tum"],
    "Gia Lai": ["Gia Lai", "Bình Định"],
    "Khánh Hòa": ["Khánh Hòa", "Ninh Thuận"],
    "Lâm Đồng": ["Lâm Đồng", "Đắk Nông", "Bình Thuận"],
    "Đắk Lắk": ["Đắk Lắk", "Phú Yên"],
    "Hồ Chí Minh": ["Hồ Chí Minh", "Bình Dương", "Bà Rịa-Vũng Tàu"],
    "Đồng Nai": ["Đồng Nai", "Bình Phước"],
    "Tây Ninh": ["Tây Ninh", "Long An"],
    "Cần Thơ": ["Cần Thơ", "Sóc Trăng", "Hậu Giang"],
    "Vĩnh Long": ["Vĩnh Long", "Bến Tre", "Trà Vinh"],
    "Đồng Tháp": ["Đồng Tháp", "Tiền Giang"],
    "Cà Mau": ["Cà Mau", "Bạc Liêu"],
    "An Giang": ["An Giang", "Kiên Giang"],
}
UNCHANGED = ["Hà Nội", "Huế", "Lai Châu", "Điện Biên", "Sơn La", "Lạng Sơn", "Quảng Ninh", "Thanh Hóa", "Nghệ An",
             "Hà Tĩnh", "Cao Bằng"]
OLD_TO_NEW = {old: new for new, olds in MERGED.items() for old in olds} | {name: name for name in UNCHANGED}


def test_the_resolution_has_63_former_provinces_and_34_units():
    assert len(OLD_TO_NEW) == 63
    assert len(set(OLD_TO_NEW.values())) == 34


def test_the_mapping_knows_the_same_63_and_34():
    assert sorted(former_provinces(), key=fold) == sorted(OLD_TO_NEW, key=fold)
    assert sorted((u.name for u in units()), key=fold) == sorted(set(OLD_TO_NEW.values()), key=fold)


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW, key=fold))
def test_every_former_province_maps_to_its_unit(old):
    unit = current_unit(old)
    assert unit is not None and unit.name == OLD_TO_NEW[old]
    assert old in unit.former
    assert current_unit(fold(old)) == unit  # typed without marks
    assert current_unit(f"tỉnh {old.upper()}") == unit


@pytest.mark.parametrize("name", sorted(set(OLD_TO_NEW.values()), key=fold))
def test_every_current_unit_maps_to_itself(name):
    unit = current_unit(name)
    assert unit is not None and unit.name == name
    assert unit.former[0] == name  # the same-named former province first
    assert sorted(unit.former, key=fold) == sorted(MERGED.get(name, [name]), key=fold)


@pytest.mark.parametrize("name, unit", [
    ("Thái Bình", "Hưng Yên"), ("thai binh", "Hưng Yên"), ("THÁI BÌNH", "Hưng Yên"), ("Tỉnh Thái Bình", "Hưng Yên"),
    ("Hà Giang", "Tuyên Quang"), ("TP.HCM", "Hồ Chí Minh"), ("TP HCM", "Hồ Chí Minh"), ("tphcm", "Hồ Chí Minh"),
    ("TP. Hồ Chí Minh", "Hồ Chí Minh"), ("Thành phố Hồ Chí Minh", "Hồ Chí Minh"),
    ("thanh pho ho chi minh", "Hồ Chí Minh"),
    ("Sài Gòn", "Hồ Chí Minh"), ("Bà Rịa - Vũng Tàu", "Hồ Chí Minh"), ("Bà Rịa – Vũng Tàu", "Hồ Chí Minh"),
    ("ba ria vung tau", "Hồ Chí Minh"), ("Thừa Thiên Huế", "Huế"), ("Thừa Thiên - Huế", "Huế"), ("TP Huế", "Huế"),
    ("Đăk Lăk", "Đắk Lắk"), ("Dak Lak", "Đắk Lắk"), ("Đắk Nông", "Lâm Đồng"), ("Bắc Cạn", "Thái Nguyên"),
    ("Thanh Hoá", "Thanh Hóa"), ("Hoà Bình", "Phú Thọ"), ("thủ đô Hà Nội", "Hà Nội"), ("TP. Đà Nẵng", "Đà Nẵng"),
    ("  Quảng Nam  ", "Đà Nẵng"), ("tinh ha nam", "Ninh Bình"), ("Kontum", "Quảng Ngãi"),
])
def test_names_prefixes_and_spellings(name, unit):
    assert current_unit(name).name == unit


@pytest.mark.parametrize("name", ["", "   ", "Paris", "Tỉnh", "thành phố", "Hà", "Thái Bình Dương", "Quận 1",
                                  "Phú Mỹ", "Bình", "Hà Nội Hà Nội", "x" * 500, None, 42])
def test_unknown_names_are_none(name):
    assert current_unit(name) is None
    assert canonical_name(name) is None


def test_canonical_name_keeps_the_old_name():
    assert canonical_name("thai binh") == "Thái Bình"
    assert canonical_name("TP.HCM") == "Hồ Chí Minh"
    assert canonical_name("Thừa Thiên Huế") == "Huế"


def test_facet_label_says_which_former_provinces_a_unit_includes():
    assert facet_label("Hưng Yên") == "Hưng Yên (gồm Hưng Yên, Thái Bình)"
    assert facet_label("Thái Bình") == "Hưng Yên (gồm Hưng Yên, Thái Bình)"
    assert facet_label(current_unit("Nam Định")) == "Ninh Bình (gồm Ninh Bình, Hà Nam, Nam Định)"
    assert facet_label("Hà Nội") == "Hà Nội"
    assert facet_label(Province("Huế", ("Huế",))) == "Huế"
    with pytest.raises(ValueError):
        facet_label("Atlantis")


def named(text: str) -> list[tuple[str, str, str]]:
    """(name, unit, the words in the text) of each mention."""
    return [(m.name, m.unit.name, text[m.start:m.end]) for m in mentions(text)]


@pytest.mark.parametrize("text, expected", [
    ("UBND tỉnh Thái Bình vừa họp.", [("Thái Bình", "Hưng Yên", "Thái Bình")]),
    ("Mưa lớn ở Hà Giang.", [("Hà Giang", "Tuyên Quang", "Hà Giang")]),
    ("Giá nhà ở TP.HCM tăng.", [("Hồ Chí Minh", "Hồ Chí Minh", "TP.HCM")]),
    ("Giá nhà ở TP. HCM tăng.", [("Hồ Chí Minh", "Hồ Chí Minh", "TP. HCM")]),
    ("Tại TPHCM và TP Hồ Chí Minh.", [("Hồ Chí Minh",) * 2 + ("TPHCM",), ("Hồ Chí Minh",) * 3]),
    ("Người Sài Gòn dậy sớm.", [("Hồ Chí Minh", "Hồ Chí Minh", "Sài Gòn")]),
    ("tỉnh Bà Rịa – Vũng Tàu", [("Bà Rịa-Vũng Tàu", "Hồ Chí Minh", "Bà Rịa – Vũng Tàu")]),
    ("bãi biển Vũng Tàu", [("Bà Rịa-Vũng Tàu", "Hồ Chí Minh", "Vũng Tàu")]),
    ("từ Thừa Thiên Huế đến Đăk Lăk", [("Huế", "Huế", "Thừa Thiên Huế"), ("Đắk Lắk", "Đắk Lắk", "Đăk Lăk")]),
    ("Công an Thanh Hoá cho biết", [("Thanh Hóa", "Thanh Hóa", "Thanh Hoá")]),
    ("Ở Hà Nội, Hải Dương và Nam Định.", [("Hà Nội", "Hà Nội", "Hà Nội"), ("Hải Dương", "Hải Phòng", "Hải Dương"),
                                          ("Nam Định", "Ninh Bình", "Nam Định")]),
    ("Chủ tịch UBND TP Hà Nội Nguyễn Đức Chung", [("Hà Nội", "Hà Nội", "Hà Nội")]),
    ("THÁI BÌNH: KHAI MẠC LỄ HỘI", [("Thái Bình", "Hưng Yên", "THÁI BÌNH")]),
    ("Báo Quảng Ninh đưa tin", [("Quảng Ninh", "Quảng Ninh", "Quảng Ninh")]),
    ("Phụ nữ miền núi Quảng Ngãi", [("Quảng Ngãi", "Quảng Ngãi", "Quảng Ngãi")]),
    ("Chủ tịch UBND TP Thanh Hoá Đào Trọng Quy cho biết", [("Thanh Hóa", "Thanh Hóa", "Thanh Hoá")]),
    ("trang trí đường phố Hà Nội", [("Hà Nội", "Hà Nội", "Hà Nội")]),
    ("Cục thi hành án dân sự TP HCM TTO - Ông Vũ Quốc Doanh", [("Hồ Chí Minh", "Hồ Chí Minh", "TP HCM")]),
])
def test_mentions_found(text, expected):
    assert named(text) == expected


@pytest.mark.parametrize("text", [
    "Hòa bình là khát vọng của nhân loại.",  # peace
    "Nhân dân mong hoà bình, bình định được vùng đất.",
    "Hiệp định Đối tác xuyên Thái Bình Dương (TPP).",  # the Pacific, and no Bình Dương inside it
    "Bão trên vùng biển tây Thái Bình Dương.",
    "Khu vực Ấn Độ Dương - Thái Bình Dương.",
    "Vùng Đồng Tháp Mười mùa nước nổi.",
    "Bà Nguyễn Thị Hà Giang cho biết.",  # people
    "Chị Hà Giang nói với phóng viên.",
    "Phó thủ tướng Trương Hoà Bình chỉ đạo.",
    "Nguyễn Hải Dương, 25 tuổi.",
    "Ông Trần Quảng Nam phát biểu.",
    "Xã Thái Bình, huyện Châu Thành.",  # a commune, a street, a river named like a province
    "Cháy nhà trên phố Huế.",
    "Thuyền trưởng nhảy xuống sông Sài Gòn.",
    "Tư tưởng Hồ Chí Minh và Đoàn TNCS Hồ Chí Minh.",  # the president
    "Xe đỗ trên đường Hồ Chí Minh.",
    "Báo Sài Gòn Giải Phóng đưa tin.",
    "Cổ phiếu của Bia Sài Gòn và công ty SJC Sài Gòn tăng.",
    "thai binh ha noi",  # not capitalised
])
def test_mentions_not_found(text):
    assert named(text) == []


def test_text_without_marks_is_read_folded():
    assert [m.name for m in mentions("Lu lut o Thai Binh va Ha Giang")] == ["Thái Bình", "Hà Giang"]


def test_marks_must_agree_in_marked_text():
    assert named("Ông Võ Quang Huệ và anh Quang Nam ở Hạ Long, công ty Tân Huê Viên, bà Huê.") == []


def test_offsets_point_into_the_text():
    text = "Sáng 5/6, đoàn công tác tỉnh Hà Nam làm việc tại Hưng Yên."
    for m in mentions(text):
        assert fold(text[m.start:m.end]) in (fold(m.name), fold("Hưng Yên"))
    assert [m.start for m in mentions(text)] == [text.index("Hà Nam"), text.index("Hưng Yên")]


def test_find_provinces_counts_and_keeps_the_old_name():
    found = find_provinces("Thái Bình mưa lớn. Ở Thái Bình và Hà Nội.\nThái Bình khắc phục.")
    assert [(f.name, f.unit.name, f.count, f.in_source) for f in found] == [
        ("Thái Bình", "Hưng Yên", 3, False), ("Hà Nội", "Hà Nội", 1, False)]


@pytest.mark.parametrize("source, expected", [
    ("baothaibinh.com.vn", ["Thái Bình"]),
    ("https://sotttt.thaibinh.gov.vn/tin-tuc/a.html", ["Thái Bình"]),
    ("hungyentv.vn", ["Hưng Yên"]),
    ("www.hanoimoi.com.vn", ["Hà Nội"]),
    ("baodaklak.vn", ["Đắk Lắk"]),
    ("tphcm.gov.vn", ["Hồ Chí Minh"]),
    ("Báo Quảng Ninh", ["Quảng Ninh"]),
    ("Cổng thông tin điện tử tỉnh Hà Giang", ["Hà Giang"]),
    ("vnexpress.net", []), ("tuoitre.vn", []), ("dantri.com.vn", []), ("nld.com.vn", []), ("", []),
])
def test_the_source_names_a_province(source, expected):
    assert [f.name for f in find_provinces("", source)] == expected
    assert all(f.in_source and f.count == 0 for f in find_provinces("", source))


def test_source_and_text_together():
    found = find_provinces("Hà Nội mưa to. Hà Nội ngập.", "baothaibinh.com.vn")
    assert [(f.name, f.count, f.in_source) for f in found] == [("Hà Nội", 2, False), ("Thái Bình", 0, True)]
    found = find_provinces("Tỉnh Thái Bình họp.", "baothaibinh.com.vn")
    assert [(f.name, f.count, f.in_source) for f in found] == [("Thái Bình", 1, True)]


def test_empty_and_odd_input():
    assert mentions("") == []
    assert find_provinces("", "") == []
    assert find_provinces("!!! ... ---", "http://") == []
