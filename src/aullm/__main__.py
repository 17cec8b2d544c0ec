from aullm.cli import main

main()
