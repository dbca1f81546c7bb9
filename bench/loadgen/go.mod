module spike.local/bench/loadgen

go 1.22
