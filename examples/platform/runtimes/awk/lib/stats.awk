# Sums and counts the first column of its input.
{ total += $1; count++ }
END { printf "count=%d total=%d\n", count, total }
