-- A claim sets only lease columns, which no index covers: with room left on the page the new
-- row version stays there (a HOT update) and no index gets a new entry. At the default fill
-- (100%) there is no room, and every claim wrote four index entries. Half the page is left: the
-- finish (not HOT: it changes the state) takes room too; at 70% only a third of claims stayed.
ALTER TABLE deliveries SET (fillfactor = 50);
