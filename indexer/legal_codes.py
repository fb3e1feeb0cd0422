"""The vocabulary of Vietnamese legal document numbers: type words and codes, and the codes spelled with Đ.

Data for indexer/legal_refs.py (which reads and normalises the numbers), kept apart so that each module
stays small.
"""

from __future__ import annotations

# --- the vocabulary ----------------------------------------------------------------------------

# Type words as they stand before a number, and the kind each names.
KIND_WORDS: dict[str, str] = {
    "thông tư liên tịch": "thông tư liên tịch", "ttlt": "thông tư liên tịch",
    "thông tư": "thông tư", "tt": "thông tư",
    "nghị định": "nghị định", "nđ": "nghị định",
    "nghị quyết liên tịch": "nghị quyết liên tịch",
    "nghị quyết": "nghị quyết", "nq": "nghị quyết",
    "quyết định": "quyết định", "qđ": "quyết định",
    "bộ luật": "bộ luật", "luật": "luật",
    "pháp lệnh": "pháp lệnh", "lệnh": "lệnh",
    "chỉ thị": "chỉ thị", "ct": "chỉ thị",
    "công văn": "công văn", "cv": "công văn",
    "công điện": "công điện",
    "kế hoạch": "kế hoạch", "kh": "kế hoạch",
    "thông báo kết luận": "thông báo", "thông báo": "thông báo", "tb": "thông báo",
    "kết luận": "kết luận", "kl": "kết luận",
    "hướng dẫn": "hướng dẫn",
    "báo cáo": "báo cáo",
    "tờ trình": "tờ trình",
    "quy định": "quy định", "qui định": "quy định",
    "quy chế": "quy chế",
    "chương trình": "chương trình",
    "đề án": "đề án",
    "phương án": "phương án",
    "hợp đồng": "hợp đồng",
    "bản án": "bản án",
    "sắc lệnh": "sắc lệnh",
    "giấy mời": "giấy mời",
    "biên bản": "biên bản",
    "giấy phép": "giấy phép",
    "cáo trạng": "cáo trạng",
    "thông cáo": "thông cáo",
    "văn bản hợp nhất": "văn bản hợp nhất",
    "quy chuẩn": "quy chuẩn",
    "tiêu chuẩn": "tiêu chuẩn",
    "văn bản": "công văn",  # a document without a type name is a công văn (Nghị định 30/2020/NĐ-CP)
}
KINDS: frozenset[str] = frozenset(KIND_WORDS.values())

# Type codes of Nghị định 30/2020/NĐ-CP (Phụ lục III) and of the Party's rules, and the kind each names.
TYPE_CODES: dict[str, str] = {
    "NĐ": "nghị định", "TT": "thông tư", "TTLT": "thông tư liên tịch", "QĐ": "quyết định",
    "NQ": "nghị quyết", "NQLT": "nghị quyết liên tịch", "CT": "chỉ thị", "KH": "kế hoạch",
    "TB": "thông báo", "KL": "kết luận", "HD": "hướng dẫn", "BC": "báo cáo", "TTr": "tờ trình",
    "CĐ": "công điện", "CV": "công văn", "QC": "quy chế", "QyĐ": "quy định", "QĐi": "quy định",
    "CTr": "chương trình", "ĐA": "đề án", "PA": "phương án", "BB": "biên bản", "HĐ": "hợp đồng",
    "GP": "giấy phép", "GM": "giấy mời", "SL": "sắc lệnh", "VBHN": "văn bản hợp nhất", "L": "lệnh",
}
# Codes that are also common issuer codes (CT Cục Thuế, PA the police's departments, HĐ Hội đồng):
# the words before the number decide first. So they do for party numbers, whose older rules were
# numbered QĐ ("Quy định 102-QĐ/TW").
WEAK_TYPE_CODES = {"CT", "PA", "HĐ", "L", "QC", "BB", "GP"}
# Types whose numbers always carry an issuer after the type code, so "nghị định 30/2020" is "30/2020/NĐ-…".
KIND_CODE = {"nghị định": "NĐ", "thông tư": "TT", "thông tư liên tịch": "TTLT", "quyết định": "QĐ",
              "kế hoạch": "KH", "thông báo": "TB", "kết luận": "KL", "công điện": "CĐ"}
# The National Assembly and its Standing Committee number laws and resolutions alike.
QH_KINDS = {"QH": frozenset({"luật", "bộ luật", "nghị quyết"}),
             "UBTVQH": frozenset({"pháp lệnh", "nghị quyết", "nghị quyết liên tịch"})}

# Abbreviations spelled with Đ: type codes, ministries, councils, party committees. Mined from the
# codes that occur in the 150k VietNews articles (bench/legal_refs.py) and Nghị định 30/2020's lists;
# only codes whose spelling with D is not itself in use (HD hướng dẫn, DA dự án, ĐT/DT are left out).
D_SPELLED = (
    "NĐ", "QĐ", "QĐi", "QyĐ", "CĐ", "HĐND", "HĐTP", "HĐQT", "HĐTV", "HĐBT", "HĐKT", "HĐTS", "HĐXD",
    "BGDĐT", "SGDĐT", "PGDĐT", "BLĐTBXH", "SLĐTBXH", "LĐTBXH", "BKHĐT", "SKHĐT", "KHĐT", "TCĐBVN",
    "CSĐT", "ANĐT", "CQĐT", "CQCSĐT", "BCĐ", "TĐKT", "ĐU", "ĐUK", "ĐHQG", "TLĐ", "QLĐT", "KLGĐ",
    "ĐKKD", "VPĐD", "ĐHĐCĐ", "BVĐK", "NĐCP", "QĐXXST", "QĐXXPT", "TWĐTN", "BĐBP", "HNGĐ",
)
D_CODES = {c.upper().replace("Đ", "D"): c.upper() for c in D_SPELLED}
MIXED_CASE = {c.upper(): c for c in ("TTg", "TTr", "CTr", "QĐi", "QyĐ")}
# Trung ương: the party's numbers write TW; a hyphen lost between the type and the issuer.
ALIASES = {"TƯ": "TW", "NĐCP": "NĐ-CP", "QĐTTG": "QĐ-TTg"}
