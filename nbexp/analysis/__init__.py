"""Analysis over query results: comparisons and reviews."""
