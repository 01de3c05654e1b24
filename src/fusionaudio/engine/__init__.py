"""How steps execute. An engine knows the Step contract and nothing about models or media."""
