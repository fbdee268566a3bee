-- A change whose registered address lies in another authority's area moves the filing there
-- once approved (Art. 10, 12).
ALTER TABLE filing_change ADD COLUMN moves_to TEXT NOT NULL DEFAULT '';
