from qadapter.cli import main

main()
