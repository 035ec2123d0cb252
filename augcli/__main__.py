from augcli.cli.main import main

main()
