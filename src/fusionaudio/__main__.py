from fusionaudio.cli import main

main()
