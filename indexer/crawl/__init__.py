"""`python -m indexer crawl`: RSS/Atom feeds, sitemaps and article pages of portals into the index.

fetch.py is the polite HTTP client (robots.txt, delays, conditional requests, limits), discover.py tells
feeds, sitemaps and pages apart and lists the links of the first two, extract.py takes the article out of
a page, and run.py walks the URLs, keeps the crawl state and hands what changed to the index writer.
"""

from indexer.crawl.run import CrawlOptions, CrawlResult, crawl

__all__ = ["CrawlOptions", "CrawlResult", "crawl"]
