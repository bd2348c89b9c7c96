from texbench.perf import main

main()
